"""The leaderboard's outputs: leaderboard.json (everything), leaderboard.md and .csv (the table with the
seed spread, the cells' wall time and peak memory) and report.html, one self-contained page (inline CSS
and SVG, no script, nothing fetched): the table, a bar chart per charted metric (mean over seeds, the
whisker spans min to max), the reward-KL frontier of each task that has one (each method's runs over a
--sweep, as in the DPO paper's fig. 2, Rafailov et al. 2023, arXiv 2305.18290), the training curves of
every trained run from its metrics.jsonl, and the cells."""
from __future__ import annotations

import csv
import io
import json
import math
from html import escape
from pathlib import Path

from ..eval.curves import running_mean

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def fmt(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return f"{v:.{digits}f}" if abs(v) < 100 else f"{v:.0f}"


def cell_text(s: dict) -> str:
    """'mean ± sd' over seeds (the mean alone for one seed); '-' when nothing was measured."""
    if not s or s.get("mean") is None:
        return "-"
    return fmt(s["mean"]) + (f" ± {fmt(s['sd'])}" if s["n"] > 1 else "")


def columns(results: dict) -> list:
    """[(task, metric dict)] of the metrics any row has a value for, in task and metric order."""
    cols = []
    for t in results["tasks"]:
        for m in t["metrics"]:
            if any(results["table"][r["label"]][t["name"]]["metrics"][m["key"]]["n"] for r in results["rows"]):
                cols.append((t, m))
        if not any(c[0] is t for c in cols):  # a task with no value at all still gets its column (errors)
            cols.append((t, t["metrics"][0]))
    return cols


def _status(entry: dict) -> str | None:
    if entry["error"]:
        return f"error: {entry['error']}"
    if entry["na"]:
        return f"n/a: {entry['na']}"
    return None


def row_cells(results: dict, label: str, cols: list) -> list:
    """The text of each column of one row: a task's first column carries its error or n/a."""
    out, seen = [], set()
    for t, m in cols:
        entry = results["table"][label][t["name"]]
        status = _status(entry)
        if status and not any(entry["metrics"][mm["key"]]["n"] for mm in t["metrics"]):
            out.append(status if t["name"] not in seen else "")
        else:
            out.append(cell_text(entry["metrics"][m["key"]]))
        seen.add(t["name"])
    return out


def budget_lines(results: dict) -> list:
    cfg = results["config"]
    lines = [f"seeds: {', '.join(map(str, results['seeds']))}"]
    if cfg["methods"]:
        s0 = results["setup"].get(str(results["seeds"][0]), {})
        steps = f"{cfg['max_steps']} optimizer steps" if cfg["max_steps"] else f"{cfg['epochs']:g} epochs"
        lines += [f"training data: {s0.get('description', '-')}; {s0.get('train_pairs', '-')} pairs train, "
                  f"{s0.get('heldout_pairs', '-')} held out (seed {results['seeds'][0]})",
                  f"label budget: {cfg['label_budget']}; every offline method: {steps}, batch {cfg['batch_size']}, "
                  f"lr {cfg['learning_rate']:g} (cosine, 10% warm-up)",
                  f"start model: {s0.get('model', '-')}" + (f"; base: {s0.get('base')}" if "base" in cfg["starts"] else "")]
        if cfg["reward"] or any(r["method"] == "rm" for r in results["rows"]):
            lines.append(f"online methods' judge: {cfg['reward'] or 'a Bradley-Terry reward model trained on the same pairs'}")
        if cfg["set"]:
            lines.append("options: " + ", ".join(cfg["set"]))
        if cfg["sweep"]:
            lines.append("sweeps: " + ", ".join(cfg["sweep"]))
    for t in results["tasks"]:
        o = t["options"]
        size = next((f"{k}={o[k]}" for k in ("n_prompts", "n_questions", "n", "limit") if k in o), "")
        lines.append(f"task {t['name']}: {t['description']} ({t['paper']})" + (f"; {size}" if size else ""))
    return lines


def markdown(results: dict) -> str:
    cols = columns(results)
    head = ["model"] + [f"{m['label']}" for _, m in cols]
    lines = ["# Alignment leaderboard", ""]
    if results.get("preset"):
        p = results["preset"]
        lines += [f"Preset `{results['config']['preset']}`: {p['description']}.", f"The survey's claim: {p['claim']}.", ""]
    lines += [f"- {b}" for b in budget_lines(results)] + [""]
    lines += ["Mean ± standard deviation over seeds.", "", "| " + " | ".join(head) + " |",
              "|" + "---|" * len(head)]
    for r in results["rows"]:
        lines.append("| " + " | ".join([r["label"]] + [c.replace("|", "/") for c in row_cells(results, r["label"], cols)]) + " |")
    lines += ["", "## Cells", "", "| cell | status | seconds | peak RSS (MiB) | steps |", "|---|---|---|---|---|"]
    for c in results["cells"]:
        status = "ok" + (" (reused)" if c.get("reused") else "") if c["status"] == "ok" else f"error: {c['error']}"
        lines.append(f"| {c['name']} | {status.replace('|', '/')} | {fmt(c.get('seconds'), 1)} | "
                     f"{fmt(c.get('peak_rss_mib'), 0)} | {c.get('steps') or ''} |")
    lines += ["", f"Wall time: {fmt(results.get('wall_seconds'), 0)} s."]
    return "\n".join(lines) + "\n"


def csv_text(results: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "method", "start", "task", "metric", "mean", "sd", "min", "max", "n", "error"])
    for r in results["rows"]:
        for t in results["tasks"]:
            entry = results["table"][r["label"]][t["name"]]
            for m in t["metrics"]:
                s = entry["metrics"][m["key"]]
                if s["n"] or entry["error"]:
                    w.writerow([r["label"], r["method"], r["start"], t["name"], m["key"], s["mean"], s["sd"],
                                s["min"], s["max"], s["n"], entry["error"] or ""])
    return buf.getvalue()


# ---- SVG ---------------------------------------------------------------------------------------------------
def _ticks(lo: float, hi: float, n: int = 5) -> list:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _num(v: float) -> str:
    return f"{v:.3g}"


def bar_chart(title: str, items: list, higher_is_better) -> str:
    """items: [(label, mean, lo, hi)] -> a horizontal bar chart with min-max whiskers."""
    left, width, bar, gap, top = 190, 330, 16, 6, 28
    vals = [v for _, m, lo, hi in items for v in (m, lo, hi) if v is not None]
    lo_v, hi_v = min(vals + [0.0]), max(vals + [0.0])
    if hi_v - lo_v < 1e-12:
        hi_v = lo_v + 1.0
    ticks = _ticks(lo_v, hi_v)
    lo_v, hi_v = min(lo_v, ticks[0]), max(hi_v, ticks[-1])

    def x(v):
        return left + (v - lo_v) / (hi_v - lo_v) * width
    h = top + len(items) * (bar + gap) + 30
    note = {True: "higher is better", False: "lower is better"}.get(higher_is_better, "")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 40}" height="{h}" role="img" '
             f'aria-label="{escape(title)}">',
             f'<text x="4" y="16" class="t">{escape(title)}</text>'
             f'<text x="{left + width + 36}" y="16" class="n" text-anchor="end">{note}</text>']
    for t in ticks:
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top - 4}" y2="{h - 26}" class="g"/>'
                     f'<text x="{x(t):.1f}" y="{h - 12}" class="n" text-anchor="middle">{_num(t)}</text>')
    for i, (label, m, lo, hi) in enumerate(items):
        y = top + i * (bar + gap)
        parts.append(f'<text x="{left - 6}" y="{y + bar - 4}" class="l" text-anchor="end">{escape(label[:30])}</text>')
        if m is None:
            parts.append(f'<text x="{left + 4}" y="{y + bar - 4}" class="n">no value</text>')
            continue
        x0, x1 = sorted((x(0.0), x(m)))
        parts.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="{bar}" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(label)}: {fmt(m)}</title></rect>')
        if lo is not None and hi is not None and hi > lo:
            yc = y + bar / 2
            parts.append(f'<line x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{yc}" y2="{yc}" class="w"/>'
                         f'<line x1="{x(lo):.1f}" x2="{x(lo):.1f}" y1="{y + 3}" y2="{y + bar - 3}" class="w"/>'
                         f'<line x1="{x(hi):.1f}" x2="{x(hi):.1f}" y1="{y + 3}" y2="{y + bar - 3}" class="w"/>')
        parts.append(f'<text x="{left + width + 36}" y="{y + bar - 4}" class="n" text-anchor="end">{fmt(m)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, series: list, xlabel: str, ylabel: str, markers: bool = False,
               width: int = 420, height: int = 260) -> str:
    """series: [(name, color, [(x, y), ...], [point labels] or None)] -> axes, lines, optional markers, legend."""
    left, right, top, bottom = 52, 12, 26, 40
    pts = [(a, b) for _, _, p, _ in series for a, b in p]
    xs, ys = [a for a, _ in pts] or [0.0, 1.0], [b for _, b in pts] or [0.0, 1.0]
    xt, yt = _ticks(min(xs), max(xs)), _ticks(min(ys), max(ys))
    x0, x1, y0, y1 = min(xt[0], min(xs)), max(xt[-1], max(xs)), min(yt[0], min(ys)), max(yt[-1], max(ys))
    legend_h = 14 * len(series)
    h = height + legend_h
    pw, ph = width - left - right, height - top - bottom

    def px(v):
        return left + (v - x0) / ((x1 - x0) or 1) * pw

    def py(v):
        return top + ph - (v - y0) / ((y1 - y0) or 1) * ph
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" role="img" aria-label="{escape(title)}">',
             f'<text x="4" y="16" class="t">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="f"/>']
    for t in xt:
        parts.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top}" y2="{top + ph}" class="g"/>'
                     f'<text x="{px(t):.1f}" y="{top + ph + 14}" class="n" text-anchor="middle">{_num(t)}</text>')
    for t in yt:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" class="g"/>'
                     f'<text x="{left - 4}" y="{py(t) + 3:.1f}" class="n" text-anchor="end">{_num(t)}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{top + ph + 30}" class="n" text-anchor="middle">{escape(xlabel)}</text>'
                 f'<text x="12" y="{top + ph / 2}" class="n" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + ph / 2})">{escape(ylabel)}</text>')
    for i, (name, color, p, labels) in enumerate(series):
        if len(p) > 1:
            d = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in p)
            parts.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        if markers or len(p) == 1:
            for j, (a, b) in enumerate(p):
                tip = f"{name} {labels[j] if labels else ''}: ({fmt(a)}, {fmt(b)})"
                parts.append(f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="3.5" fill="{color}">'
                             f'<title>{escape(tip)}</title></circle>')
        ly = height + 14 * i
        parts.append(f'<rect x="{left}" y="{ly}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{left + 14}" y="{ly + 9}" class="l">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def charts(results: dict) -> list:
    """[(id, caption, svg)] of every chart of the report: the reward-KL frontiers, a bar chart per charted
    metric, a training curve per trained run."""
    out = []
    labels = [r["label"] for r in results["rows"]]
    for t in results["tasks"]:
        fr = results["frontier"].get(t["name"]) or []
        if not fr:
            continue
        rk, kk = t["frontier"]
        names = {m["key"]: m["label"] for m in t["metrics"]}
        series = [(g["group"], PALETTE[i % len(PALETTE)], [(p["x"], p["y"]) for p in g["points"]],
                   [", ".join(f"{k}={v}" for k, v in p["sweep"].items()) or "default" for p in g["points"]])
                  for i, g in enumerate(fr)]
        out.append((f"frontier-{t['name']}", f"{t['name']}: reward-KL frontier (each method's runs over its sweep; "
                                             "means over seeds)",
                    line_chart(f"{t['name']}: {names[rk]} vs {names[kk]}", series, names[kk], names[rk], markers=True)))
    for t in results["tasks"]:
        for m in t["metrics"]:
            if not m["chart"]:
                continue
            stats = [results["table"][lab][t["name"]]["metrics"][m["key"]] for lab in labels]
            if not any(s["n"] for s in stats):
                continue
            items = [(lab, s["mean"], s["min"], s["max"]) for lab, s in zip(labels, stats)]
            out.append((f"bar-{t['name']}-{m['key']}", f"{t['name']}: {m['label']} (mean over seeds; whiskers: min-max)",
                        bar_chart(f"{t['name']}: {m['label']}", items, m["higher_is_better"])))
    by_row: dict = {}
    for c in results["curves"]:
        by_row.setdefault(c["row"], []).append(c)
    for i, (row, cs) in enumerate(by_row.items()):
        metric = "loss" if any("loss" in c["series"] for c in cs) else next(iter(cs[0]["series"]))
        series = []
        for j, c in enumerate(cs):
            p = c["series"].get(metric) or []
            if p:
                smooth = running_mean([v for _, v in p], max(1, len(p) // 20))
                series.append((f"seed {c['seed']}", PALETTE[j % len(PALETTE)], [(s, v) for (s, _), v in zip(p, smooth)], None))
        if series:
            out.append((f"curve-{i}", f"training curve of {row}: {metric} (running mean)",
                        line_chart(f"{row}: {metric}", series, "step", metric, width=320, height=200)))
    return out


CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
td{white-space:nowrap}th:first-child,td:first-child{text-align:left}thead th{background:#f3f3f3}td.error{color:#b00;text-align:left;max-width:420px}
td.na{color:#888;text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:18px}figure.chart{margin:0;border:1px solid #ddd;padding:6px;background:#fff}
figcaption{font-size:11.5px;color:#555;max-width:560px}
svg .t{font-size:13px;font-weight:600}svg .l{font-size:11px}svg .n{font-size:10px;fill:#555}
svg .g{stroke:#e3e3e3}svg .w{stroke:#222;stroke-width:1.2}svg .f{fill:#fafafa;stroke:#ccc}
ul.budget{font-size:13px}"""


def html(results: dict) -> str:
    cols = columns(results)
    cfg = results["config"]
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>alignkit leaderboard</title>",
             f"<style>{CSS}</style></head><body><h1>Alignment leaderboard</h1>"]
    if results.get("preset"):
        p = results["preset"]
        parts.append(f"<p><b>Preset {escape(cfg['preset'])}</b>: {escape(p['description'])}.<br>"
                     f"The survey's claim: {escape(p['claim'])}.</p>")
    parts.append("<h2>Budget</h2><ul class='budget'>" + "".join(f"<li>{escape(b)}</li>" for b in budget_lines(results))
                 + "</ul>")
    parts.append("<h2>Table</h2><p>Mean ± standard deviation over seeds.</p><table id='leaderboard'><thead><tr><th>model</th>")
    tasks_in = []
    for t, m in cols:
        if not tasks_in or tasks_in[-1][0] is not t:
            tasks_in.append([t, 0])
        tasks_in[-1][1] += 1
    parts.append("".join(f"<th colspan='{n}'>{escape(t['name'])}</th>" for t, n in tasks_in) + "</tr><tr><th></th>")
    parts.append("".join(f"<th>{escape(m['label'])}</th>" for _, m in cols) + "</tr></thead><tbody>")
    for r in results["rows"]:
        parts.append(f"<tr><td>{escape(r['label'])}</td>")
        for t, n in tasks_in:
            entry = results["table"][r["label"]][t["name"]]
            status = _status(entry)
            task_cols = [m for tt, m in cols if tt is t]
            if status and not any(entry["metrics"][m["key"]]["n"] for m in t["metrics"]):
                cls = "error" if entry["error"] else "na"
                parts.append(f"<td class='{cls}' colspan='{n}' title='{escape(status)}'>{escape(status)}</td>")
                continue
            for m in task_cols:
                s = entry["metrics"][m["key"]]
                tip = "seeds: " + ", ".join(fmt(v) for v in s["values"]) if s["n"] else ""
                parts.append(f"<td title='{escape(tip)}'>{escape(cell_text(s))}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table>")
    figs = charts(results)
    parts.append("<h2>Charts</h2><div class='charts'>")
    for cid, caption, svg in figs:
        parts.append(f"<figure class='chart' id='{escape(cid)}'>{svg}<figcaption>{escape(caption)}</figcaption></figure>")
    parts.append("</div><h2>Cells</h2><p>Every set-up, training run and score ran in its own process: wall time and the "
                 "peak resident memory of that process (it includes what the runner had loaded when it forked).</p>"
                 "<table id='cells'><thead><tr><th>cell</th><th>status</th><th>seconds</th><th>peak RSS (MiB)</th>"
                 "<th>peak GPU (MiB)</th><th>steps</th></tr></thead><tbody>")
    for c in results["cells"]:
        ok = c["status"] == "ok"
        status = ("ok" + (" (reused)" if c.get("reused") else "")) if ok else f"error: {c['error']}"
        parts.append(f"<tr><td>{escape(c['name'])}</td><td class='{'' if ok else 'error'}'>{escape(status)}</td>"
                     f"<td>{fmt(c.get('seconds'), 1)}</td><td>{fmt(c.get('peak_rss_mib'), 0)}</td>"
                     f"<td>{fmt(c.get('peak_gpu_mib'), 0)}</td><td>{c.get('steps') or ''}</td></tr>")
    parts.append(f"</tbody></table><p>Wall time {fmt(results.get('wall_seconds'), 0)} s. Written by "
                 f"<code>alignkit leaderboard</code>; the numbers are in leaderboard.json.</p></body></html>")
    return "".join(parts)


def write_outputs(results: dict, out: Path) -> dict:
    """leaderboard.json, .md, .csv and report.html in `out`; -> {name: path}."""
    results["charts"] = [{"id": cid, "caption": cap} for cid, cap, _ in charts(results)]
    files = {"json": out / "leaderboard.json", "md": out / "leaderboard.md", "csv": out / "leaderboard.csv",
             "html": out / "report.html"}
    files["json"].write_text(json.dumps(results, indent=1, default=str))
    files["md"].write_text(markdown(results))
    files["csv"].write_text(csv_text(results))
    files["html"].write_text(html(results))
    return files
