"""`alignkit leaderboard`: score models on evaluation tasks, or train methods and then score them.

    run_leaderboard(LeaderboardConfig(output="runs/lb", methods=("dpo", "kto"), tasks=("bundled",)))

Two modes:
- `--models A,B,...`: each model is a row; each (model, task, seed) a cell.
- `--methods dpo,kto,...`: one starting model (and, with `--starts model,base`, the pre-trained model
  before SFT), one labelled data set at one label budget, one step count; every method is trained from
  each start for each seed (`run_train`, alignkit/registry.py), every `--sweep` value adds a run, then
  every run and the starting models are scored. Pairwise methods train on the pairs, thumbs-up/down
  methods on the same pairs as thumbs (chosen up, rejected down: the same labels), SFT on the chosen
  sides, online methods (ppo, iterative-dpo, ...) on the pairs' prompts with `--reward`, by default a
  Bradley-Terry reward model trained on the same pairs (a row of its own). Without --model / --data the
  first task with a training set-up provides them (the bundled task: its SFT model and labeller).

Every set-up, training run and score is a cell run in its own process (cells.py) with its wall time
and peak memory; a failure is a one-line error in its cell and the others still run. A finished cell
is recorded under OUT/cells/ with a key of everything it depends on, and a rerun reuses it (resume).
The results go to OUT/leaderboard.json, .md, .csv and report.html (report.py).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import keys_of, parse_scalar
from ..errors import AlignkitError, ConfigError
from ..eval.tasks import Context, Subject, get_task, subject_kind, task_config
from .cells import one_line, prewarm, run_cell
from .config import PRESETS, LeaderboardConfig, apply_preset

OFFLINE_SHAPES = ("pairwise", "binary", "demonstration")
CURVE_METRICS = ("loss", "reward", "rewards/accuracy")
MAX_CURVE_POINTS = 200


@dataclass(frozen=True)
class Run:
    """A method trained from one start with one set of options (one per seed)."""
    label: str  # its row
    method: str
    start: str  # model | base
    group: str  # the frontier series: arm label (+ start)
    sweep: tuple = ()  # ((field, value), ...) of a --sweep point
    options: dict = field(default_factory=dict)  # this run's option overrides (--set, --sweep)


@dataclass(frozen=True)
class Row:
    label: str
    kind: str = ""  # "" = detected from the folder; reward for the judge reward model
    method: str = ""  # "" for a given or starting model
    start: str = ""
    group: str = ""
    sweep: tuple = ()
    fixed_path: str = ""  # a given model (the same for every seed)
    run: Run | None = None  # a trained run (a folder per seed)
    ref_start: bool = False  # its reference is its start model


def _key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_") or "x"



def parse_labelled(items: tuple, what: str) -> list:
    """("dpo", "b=ipo") -> [("dpo", "dpo"), ("b", "ipo")]; labels must be unique."""
    out = []
    for item in items:
        label, eq, value = item.partition("=")
        label, value = label.strip(), (value if eq else label).strip()
        if not label or not value:
            raise ConfigError(f"--{what}: {item!r} is not NAME or LABEL=NAME")
        out.append((label, value))
    labels = [lab for lab, _ in out]
    dup = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dup:
        raise ConfigError(f"--{what}: two entries labelled {', '.join(dup)}; name them LABEL=...")
    return out


def task_options(items: tuple, names: list) -> dict:
    """("xstest.n=10",) -> {"xstest": {"n": "10"}}; the task must be one of `names`."""
    out: dict = {n: {} for n in names}
    for item in items:
        key, _, value = item.partition("=")
        task, dot, fld = key.strip().partition(".")
        if not dot or not fld:
            raise ConfigError(f"--task-option {item!r}: expected TASK.FIELD=VALUE")
        if task not in out:
            raise ConfigError(f"--task-option {item!r}: {task!r} is not one of the --tasks ({', '.join(names)})")
        out[task][fld.replace("-", "_")] = value
    return out


# ---- planning the runs of --methods ---------------------------------------------------------------------
def method_fields(method: str) -> set:
    """Every option name `alignkit train METHOD` takes: the run's, the method's, a composite's inner loss's."""
    from ..losses.registry import get_loss
    from ..registry import get_method, inner_loss_name
    from ..train.config import TrainConfig
    m = get_method(method)
    names = keys_of(TrainConfig) | keys_of(m.config)  # with the deprecated aliases (config.option)
    if m.inner_feedback:
        inner = get_loss(inner_loss_name(m, {}, {}), m.inner_feedback)
        names |= keys_of(inner.config)
    return names


def _split_scoped(items: tuple, labels: list, flag: str) -> tuple:
    """[METHOD.]FIELD=VALUE items -> (global {field: raw}, {label: {field: raw}})."""
    glob, per = {}, {lab: {} for lab in labels}
    for item in items:
        key, _, raw = item.partition("=")
        scope, dot, name = key.strip().rpartition(".")
        name = name.replace("-", "_")
        if dot:
            if scope not in per:
                raise ConfigError(f"--{flag} {item!r}: no method labelled {scope!r} (methods: {', '.join(labels)})")
            per[scope][name] = raw
        else:
            glob[name] = raw
    return glob, per


def plan_runs(cfg: LeaderboardConfig) -> list:
    """One Run per (method arm, start, sweep point)."""
    arms = parse_labelled(cfg.methods, "methods")
    labels = [lab for lab, _ in arms]
    fields = {lab: method_fields(m) for lab, m in arms}
    glob_set, per_set = _split_scoped(cfg.set, labels, "set")
    glob_sweep, per_sweep = _split_scoped(cfg.sweep, labels, "sweep")
    for name in list(glob_set) + list(glob_sweep):
        if not any(name in f for f in fields.values()):
            raise ConfigError(f"no method takes the option {name!r} (`alignkit train METHOD --help` lists them)")
    for scoped in (per_set, per_sweep):
        for lab, opts in scoped.items():
            for name in opts:
                if name not in fields[lab]:
                    raise ConfigError(f"{lab}: {dict(arms)[lab]} takes no option {name!r} "
                                      f"(`alignkit train {dict(arms)[lab]} --help` lists them)")
    runs = []
    multi_start = len(cfg.starts) > 1
    for start in cfg.starts:
        for lab, method in arms:
            opts = {k: parse_scalar(v) for k, v in glob_set.items() if k in fields[lab]}
            opts.update({k: parse_scalar(v) for k, v in per_set[lab].items()})
            group = f"{lab} (from {'SFT' if start == 'model' else 'base'})" if multi_start else lab
            runs.append(Run(group, method, start, group, (), opts))
            sweeps = {k: v for k, v in glob_sweep.items() if k in fields[lab]}
            sweeps.update(per_sweep[lab])
            for name, raw in sweeps.items():
                for v in (parse_scalar(x) for x in raw.split(",") if x.strip()):
                    if opts.get(name) == v:
                        continue
                    runs.append(Run(f"{group} {name}={v}", method, start, group, ((name, v),), {**opts, name: v}))
    return runs


# ---- the training data of --methods -----------------------------------------------------------------------
def _write_prompts(prompts: list, path: Path):
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))


def make_setup(cfg: LeaderboardConfig, seed: int, folder: str, task_name: str, task_opts: dict) -> dict:
    """Write the seed's training data (pairs, thumbs, demonstrations, prompts; train and held out) to
    `folder`; -> {"model", "base", "description", "train_pairs", "heldout_pairs", "train_defaults"}."""
    from ..data.convert import demonstrations_from_pairwise, pairwise_to_binary, split_records, write_jsonl
    from ..data.records import prompt_text
    from ..rewards.evaluate import as_pairs
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    setup = None
    if not cfg.data or not cfg.model:
        if not task_name:
            raise ConfigError("--methods needs --model and --data, or a task with a training set-up (e.g. bundled)")
        task = get_task(task_name)
        setup = task.setup(task_config(task, task_opts), cfg.label_budget or 600, seed, lambda *a, **k: None)
    if cfg.data:
        from ..data.readers import read_records
        records, _ = read_records(cfg.data)
        pairs = as_pairs(records, cfg.data)
        if cfg.label_budget:
            pairs = pairs[: cfg.label_budget]
        description = f"{cfg.data}: the first {len(pairs)} pairs"
    else:
        pairs, description = list(setup.pairs), setup.description
    if len(pairs) < 2:
        raise ConfigError(f"{cfg.data or task_name}: {len(pairs)} labelled pairs; at least 2 are needed")
    train, held = split_records(pairs, cfg.eval_fraction, seed) if cfg.eval_fraction > 0 else (pairs, [])
    write_jsonl(train, out / "pairs_train.jsonl")
    write_jsonl(pairwise_to_binary(train), out / "binary_train.jsonl")
    write_jsonl(demonstrations_from_pairwise(train), out / "demos_train.jsonl")
    if held:
        write_jsonl(held, out / "pairs_heldout.jsonl")
        write_jsonl(pairwise_to_binary(held), out / "binary_heldout.jsonl")
        write_jsonl(demonstrations_from_pairwise(held), out / "demos_heldout.jsonl")
    if setup is not None and not cfg.data:
        prompts = list(setup.prompts)
    else:
        seen = {}
        for p in train:
            seen.setdefault(prompt_text(p.prompt), p.prompt)
        prompts = list(seen.values())
    _write_prompts(prompts, out / "prompts_train.jsonl")
    model = cfg.model or setup.model
    base = cfg.base_model or (setup.base if setup is not None else "")
    return {"model": model, "base": base, "description": description, "train_pairs": len(train),
            "heldout_pairs": len(held), "prompts": len(prompts),
            "train_defaults": dict(setup.train_defaults) if setup is not None else {}}


def _train(method: str, start: str, data: str, output: str, overrides: dict) -> dict:
    from ..registry import run_train
    shutil.rmtree(output, ignore_errors=True)
    summary = run_train(method, start, data, output, overrides, log=lambda *a, **k: None)
    if summary.get("interrupted"):
        raise KeyboardInterrupt
    return {"steps": summary.get("steps"), "train_examples": summary.get("train_examples"),
            "iterations": summary.get("iterations"), "rounds": len(summary.get("rounds") or []) or None}


def run_overrides(cfg: LeaderboardConfig, run: Run, seed: int, data_dir: Path, setup: dict, reward: str) -> tuple:
    """(data path, options) of one training run."""
    from ..registry import get_method
    m = get_method(run.method)
    fields = method_fields(run.method)
    opts = {"learning_rate": cfg.learning_rate, "batch_size": cfg.batch_size, "lr_scheduler": "cosine",
            "warmup_ratio": 0.1, "epochs": cfg.epochs, "seed": seed, "progress": False, "eval_fraction": 0.0,
            "num_threads": cfg.num_threads, **setup.get("train_defaults", {})}
    if m.feedback == "online":
        data = data_dir / "prompts_train.jsonl"
        if "reward" in fields:
            opts["reward"] = reward
        if m.theme == "RL":  # an RL iteration is a rollout batch: --set METHOD.iterations=N sets how many
            opts.pop("epochs")
    elif m.feedback in OFFLINE_SHAPES:
        stem = {"pairwise": "pairs", "binary": "binary", "demonstration": "demos"}[m.feedback]
        data = data_dir / f"{stem}_train.jsonl"
        if (data_dir / f"{stem}_heldout.jsonl").is_file():
            opts["eval_data"] = str(data_dir / f"{stem}_heldout.jsonl")
        if cfg.max_steps:
            opts["max_steps"] = cfg.max_steps
    else:
        raise ConfigError(f"{run.method}: the leaderboard trains from labelled pairs; a {m.feedback} method "
                          f"needs data of its own shape (train it yourself and pass it with --models)")
    opts = {k: v for k, v in opts.items() if k in fields}
    opts.update(run.options)
    return str(data), opts


# ---- scoring --------------------------------------------------------------------------------------------
def _score(task_name: str, options: dict, subject: Subject, ctx: Context) -> dict:
    task = get_task(task_name)
    kind = subject.kind or subject_kind(subject.path)
    if kind not in task.subjects:
        return {"na": f"{task.name} scores {' and '.join(task.subjects)} models, not a {kind} model"}
    subject = dataclasses.replace(subject, kind=kind)
    cfg = task_config(task, options)
    items = task.items(cfg, ctx)
    try:
        metrics = task.score(subject, items, cfg, ctx)
    except (AlignkitError, KeyboardInterrupt):
        raise
    except Exception as e:  # e.g. a folder whose weights do not load: name the folder
        raise AlignkitError(f"{subject.path}: {one_line(e)}") from e
    return {"metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}}


# ---- the cells' records (resume) ---------------------------------------------------------------------------
class Cells:
    def __init__(self, folder: Path, cfg: LeaderboardConfig, log):
        self.folder, self.cfg, self.log = folder, cfg, log
        folder.mkdir(parents=True, exist_ok=True)
        self.records = []

    def run(self, name: str, key: str, fn, kwargs: dict, info: dict, done=lambda rec: True) -> dict:
        path = self.folder / f"{_slug(name)}.json"
        if path.is_file():
            try:
                rec = json.loads(path.read_text())
            except json.JSONDecodeError:
                rec = {}
            if rec.get("key") == key and rec.get("status") == "ok" and done(rec):
                rec["reused"] = True
                self.records.append(rec)
                return rec
        self.log(f"{name} ...")
        res = run_cell(fn, kwargs, self.cfg.isolate, self.cfg.num_threads, self.cfg.timeout)
        rec = {"name": name, "key": key, **info, **res}
        path.write_text(json.dumps(rec, indent=1, default=str))
        status = f"{rec['seconds']:.1f} s, peak {rec.get('peak_rss_mib', 0):.0f} MiB"
        self.log(f"{name}: {'ok' if rec['status'] == 'ok' else 'error: ' + rec['error']} ({status})")
        rec["reused"] = False
        self.records.append(rec)
        return rec


# ---- aggregation ------------------------------------------------------------------------------------------
def summarize(values: list) -> dict:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0, "values": []}
    return {"mean": statistics.fmean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
            "min": min(vals), "max": max(vals), "n": len(vals), "values": vals}


def read_curves(folder: str, metrics=CURVE_METRICS) -> dict:
    """{metric: [[step, value], ...]} of a run's training rows (metrics.jsonl; an iterative run's rounds
    one after the other), thinned to at most MAX_CURVE_POINTS points."""
    from ..eval.curves import read_metrics
    root = Path(folder)
    files = [root / "metrics.jsonl"] if (root / "metrics.jsonl").is_file() else sorted(
        root.glob("round-*/metrics.jsonl"), key=lambda p: int(p.parent.name.split("-")[1]))
    out: dict = {}
    offset = 0
    for f in files:
        train, _ = read_metrics(f)
        last = 0
        for row in train:
            for m in metrics:
                v = row.get(m)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    out.setdefault(m, []).append([row["step"] + offset, v])
            last = max(last, row["step"])
        offset += last
    for m, pts in out.items():
        if len(pts) > MAX_CURVE_POINTS:
            stride = len(pts) / MAX_CURVE_POINTS
            out[m] = [pts[int(i * stride)] for i in range(MAX_CURVE_POINTS)] + [pts[-1]]
    return out


def run_leaderboard(cfg: LeaderboardConfig, log=print) -> dict:
    """Run (or resume) the leaderboard; -> the results dict (also OUT/leaderboard.json)."""
    from .report import write_outputs
    t0 = time.time()
    cfg = apply_preset(cfg)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [get_task(n) for n in cfg.tasks]
    opts = task_options(cfg.task_option, list(cfg.tasks))
    for t in tasks:  # a bad option is an error now, not in every cell
        task_config(t, opts[t.name])
    cells = Cells(out / "cells", cfg, log)
    if cfg.isolate:
        prewarm([p.partition("=")[2] or p for p in cfg.models] + [cfg.model, cfg.base_model])
    seeds = list(cfg.seeds)
    rows, paths, setups = [], {}, {}  # paths: (row label, seed) -> folder
    train_ok: dict = {}
    if cfg.models:
        for label, path in parse_labelled(cfg.models, "models"):
            rows.append(Row(label, fixed_path=path))
            for s in seeds:
                paths[(label, s)] = path
    else:
        runs = plan_runs(cfg)
        setup_task = next((t.name for t in tasks if t.setup is not None), "")
        online = any(_is_online(r.method) for r in runs)
        for s in seeds:
            data_dir = out / "data" / f"seed{s}"
            key = _key({"data": cfg.data, "model": cfg.model, "base": cfg.base_model, "budget": cfg.label_budget,
                        "eval_fraction": cfg.eval_fraction, "task": setup_task,
                        "task_options": opts.get(setup_task) if setup_task else None, "seed": s})
            rec = cells.run(f"setup seed{s}", key, make_setup,
                            {"cfg": cfg, "seed": s, "folder": str(data_dir), "task_name": setup_task,
                             "task_opts": opts.get(setup_task, {})},
                            {"phase": "setup", "seed": s}, done=lambda r, d=data_dir: (d / "pairs_train.jsonl").is_file())
            if rec["status"] != "ok":
                raise ConfigError(f"the training data for seed {s} could not be made: {rec['error']}")
            setups[s] = rec["value"]
        first = setups[seeds[0]]
        if cfg.isolate:
            prewarm([first["model"], first["base"]])
        starts = {"model": first["model"], "base": first["base"]}
        if "base" in cfg.starts and not starts["base"]:
            raise ConfigError("--starts base needs --base-model DIR (the pre-trained model before SFT)")
        rows.append(Row("SFT (start)" if "base" in cfg.starts else "start", fixed_path=starts["model"], start="model"))
        if "base" in cfg.starts:
            rows.append(Row("base (start)", fixed_path=starts["base"], start="base"))
        for r in rows:
            for s in seeds:
                paths[(r.label, s)] = r.fixed_path
        judge_row = None
        if online and not cfg.reward:
            judge_row = Row("reward model (judge)", kind="reward", method="rm", start="model",
                            run=Run("reward model (judge)", "rm", "model", "reward model (judge)"))
            rows.append(judge_row)
        rows += [Row(r.label, method=r.method, start=r.start, group=r.group, sweep=r.sweep, run=r, ref_start=True)
                 for r in runs]
        for s in seeds:  # the judge first: the online runs need it
            data_dir = out / "data" / f"seed{s}"
            for row in rows:
                if row.run is None:
                    continue
                folder = out / "runs" / f"seed{s}" / _slug(row.label)
                paths[(row.label, s)] = str(folder)
                start = starts[row.start]
                reward = cfg.reward or (f"rm:{paths[(judge_row.label, s)]}" if judge_row else "")
                if _is_online(row.method) and judge_row and not train_ok.get((judge_row.label, s)):
                    train_ok[(row.label, s)] = False
                    cells.records.append({"name": f"train {row.label} seed{s}", "phase": "train", "row": row.label,
                                          "seed": s, "status": "error", "seconds": 0.0,
                                          "error": "its judge, the reward model, failed to train"})
                    continue
                try:
                    data, overrides = run_overrides(cfg, row.run, s, data_dir, setups[s], reward)
                except ConfigError as e:
                    raise ConfigError(f"{row.label}: {e}") from None
                key = _key({"method": row.method, "start": start, "data": data, "setup": setups[s],
                            "overrides": overrides})
                rec = cells.run(f"train {row.label} seed{s}", key, _train,
                                {"method": row.method, "start": start, "data": data, "output": str(folder),
                                 "overrides": overrides},
                                {"phase": "train", "row": row.label, "seed": s, "method": row.method,
                                 "overrides": overrides},
                                done=lambda r, f=folder: (f / "config.json").is_file())
                train_ok[(row.label, s)] = rec["status"] == "ok"
    baseline = cfg.baseline or (paths[(rows[0].label, seeds[0])] if cfg.methods else "")
    for row in rows:  # scoring
        for s in seeds:
            path = paths[(row.label, s)]
            ctx = Context(seed=s, baseline=baseline, reference=cfg.reference or baseline,
                          heldout=str(out / "data" / f"seed{s}" / "pairs_heldout.jsonl") if cfg.methods else "",
                          max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, log=lambda *a, **k: None)
            ref = ""
            if row.ref_start:  # a trained run: the model it started from (its training reference)
                ref = setups[s]["model"] if row.start == "model" else setups[s]["base"]
            elif row.start:  # a starting model: the leaderboard's reference (a config.yaml may name a stale one)
                ref = cfg.reference or baseline
            subject = Subject(row.label, path, row.kind, ref)
            for t in tasks:
                name = f"score {row.label} {t.name} seed{s}"
                info = {"phase": "score", "row": row.label, "task": t.name, "seed": s}
                if row.run is not None and not train_ok.get((row.label, s)):
                    cells.records.append({"name": name, **info, "status": "error", "seconds": 0.0,
                                          "error": "not trained (its training cell failed)"})
                    continue
                key = _key({"task": t.name, "options": opts[t.name], "subject": dataclasses.asdict(subject),
                            "ctx": {k: v for k, v in dataclasses.asdict(ctx).items() if k != "log"},
                            "model_time": _mtime(path)})
                cells.run(name, key, _score, {"task_name": t.name, "options": opts[t.name], "subject": subject,
                                              "ctx": ctx}, info)
    results = aggregate(cfg, tasks, opts, rows, paths, cells.records, setups, seeds)
    results["wall_seconds"] = round(time.time() - t0, 1)
    write_outputs(results, out)
    return results


def _is_online(method: str) -> bool:
    from ..registry import get_method
    return get_method(method).feedback == "online"


def _mtime(path: str) -> float | None:
    """When a model folder's weights last changed (a retrained folder invalidates its scores)."""
    p = Path(path)
    files = list(p.glob("*.safetensors")) if p.is_dir() else []
    return max((f.stat().st_mtime for f in files), default=None)


def aggregate(cfg, tasks, opts, rows, paths, records, setups, seeds) -> dict:
    scores = {(r["row"], r["task"], r["seed"]): r for r in records if r.get("phase") == "score"}
    trains = {(r["row"], r["seed"]): r for r in records if r.get("phase") == "train"}
    table = {}
    for row in rows:
        entry = {}
        for t in tasks:
            recs = [scores.get((row.label, t.name, s)) for s in seeds]
            failed = {s: r["error"] for s, r in zip(seeds, recs) if r and r["status"] == "error"}
            if len(set(failed.values())) == 1 and len(failed) == len(seeds):
                errors = list(set(failed.values()))  # the same error in every seed: said once
            else:
                errors = [f"seed {s}: {e}" for s, e in failed.items()]
            na = next((r["value"]["na"] for r in recs if r and r["status"] == "ok" and "na" in r["value"]), None)
            vals = [r["value"].get("metrics", {}) for r in recs if r and r["status"] == "ok" and "na" not in r["value"]]
            entry[t.name] = {"metrics": {m.key: summarize([v.get(m.key) for v in vals]) for m in t.metrics},
                             "error": "; ".join(errors) or None, "na": na}
        table[row.label] = entry
    frontier = {}
    for t in tasks:
        if not t.frontier:
            continue
        rk, kk = t.frontier
        series = {}
        for row in rows:
            if not row.group:
                continue
            m = table[row.label][t.name]["metrics"]
            if m[rk]["mean"] is None or m[kk]["mean"] is None:
                continue
            series.setdefault(row.group, []).append({"label": row.label, "x": m[kk]["mean"], "y": m[rk]["mean"],
                                                     "sweep": dict(row.sweep)})
        frontier[t.name] = [{"group": g, "points": sorted(pts, key=lambda p: p["x"])} for g, pts in series.items()]
    curves = []
    for row in rows:
        if row.run is None:
            continue
        for s in seeds:
            if trains.get((row.label, s), {}).get("status") == "ok":
                c = read_curves(paths[(row.label, s)])
                if c:
                    curves.append({"row": row.label, "seed": s, "series": c})
    cell_rows = [{k: r.get(k) for k in ("name", "phase", "row", "task", "seed", "status", "error", "seconds",
                                          "peak_rss_mib", "peak_gpu_mib", "reused")} for r in records]
    for c, r in zip(cell_rows, records):
        if r.get("phase") == "train" and r.get("status") == "ok":
            v = r.get("value") or {}
            c["steps"] = v.get("steps") or (f"{v['rounds']} rounds" if v.get("rounds") else None)
    return {
        "config": dataclasses.asdict(cfg),
        "preset": dataclasses.asdict(PRESETS[cfg.preset]) if cfg.preset else None,
        "tasks": [{"name": t.name, "description": t.description, "paper": t.paper,
                   "options": dataclasses.asdict(task_config(t, opts[t.name])), "primary": t.primary,
                   "frontier": list(t.frontier),
                   "metrics": [dataclasses.asdict(m) for m in t.metrics]} for t in tasks],
        "rows": [{"label": r.label, "method": r.method, "start": r.start, "group": r.group, "sweep": dict(r.sweep),
                  "kind": r.kind, "paths": {str(s): paths[(r.label, s)] for s in seeds}} for r in rows],
        "seeds": seeds, "setup": {str(s): v for s, v in setups.items()},
        "table": table, "frontier": frontier, "curves": curves, "cells": cell_rows,
    }
