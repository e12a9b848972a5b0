"""docs/results/termination.md: per-round held-out figures of an iterative run, and the round each --stop-when
rule stops it at, replayed on the run's own figures (the rules read nothing else, so this is the round a
live run with the same seed stops at).

    .venv/bin/python docs/results/scripts/termination_table.py runs/term/iter_rm_s0 [RULES ...]
    ... --stop-judge SPEC --heldout FILE   the winrate rule judged by another judge, replayed on the held-out
                                           answers each round kept (round-T/heldout.jsonl)
"""
import json
import sys
from pathlib import Path

from alignkit.online.stopping import decide, parse_stop_when

RULES = ["winrate", "winrate:0.45", "kl:1", "kl:3", "plateau:0.05:1", "plateau:0.02:2", "winrate,kl:3,plateau:0.02:2"]


def history(run: Path) -> list:
    h = [json.loads((run / "round-0" / "watch.json").read_text())]
    t = 1
    while (run / f"round-{t}" / "round.json").is_file():
        h.append(json.loads((run / f"round-{t}" / "round.json").read_text())["heldout"])
        t += 1
    return h


def rejudge(run: Path, h: list, spec: str, heldout: str) -> list:
    """The history with each round's win rate against the previous one recomputed under `spec`."""
    from alignkit.data.prompts import read_prompts
    from alignkit.online.stopping import outcome, win_rate_interval
    from alignkit.rewards.specs import judge_from_spec
    import alignkit.plugins  # noqa: F401  (truth)
    judge = judge_from_spec(spec)
    texts = [[json.loads(x)["text"] for x in (run / f"round-{e['round']}" / "heldout.jsonl").read_text().splitlines()]
             for e in h]
    prompts = read_prompts(heldout)[: len(texts[0])]
    out = [h[0]]
    for t in range(1, len(h)):
        p = judge.compare(prompts, texts[t], texts[t - 1])
        out.append({**h[t], "win_rate": win_rate_interval([outcome(x) for x in p])})
    return out


def main():
    args = sys.argv[1:]
    judge_spec = heldout = None
    if "--stop-judge" in args:
        i = args.index("--stop-judge")
        judge_spec = args[i + 1]
        del args[i:i + 2]
    if "--heldout" in args:
        i = args.index("--heldout")
        heldout = args[i + 1]
        del args[i:i + 2]
    run = Path(args[0])
    rules = args[1:] or RULES
    h = history(run)
    if judge_spec:
        h = rejudge(run, h, judge_spec, heldout)
        print(f"(win rates against the previous round judged by {judge_spec})\n")
    print("| round | judge reward (held-out) | r* (held-out) | win rate vs previous, judge [95% CI] | "
          "win rate vs previous, r* | KL to SFT | length |")
    print("|---|---|---|---|---|---|---|")
    for e in h:
        w = e.get("win_rate")
        wr = f"{w['win_rate']:.3f} [{w['low']:.3f}, {w['high']:.3f}]" if w else "-"
        ew = f"{e['eval_win_rate']:.3f}" if "eval_win_rate" in e else "-"
        print(f"| {e['round']} | {e['judge_reward']:.3f} | {e.get('eval_reward', float('nan')):.3f} | {wr} | {ew} | "
              f"{e['kl']:.2f} | {e['length_tokens']:.1f} |")
    best = max(h, key=lambda e: e.get("eval_reward", float("-inf")))
    top = max(h, key=lambda e: e["judge_reward"])
    print(f"\nbest r*: round {best['round']} ({best['eval_reward']:.3f}); highest judge reward: round {top['round']} "
          f"({top['judge_reward']:.3f})\n")
    print("| rule | stops after round | result (stop-keep previous) | r* of the result | rule figures |")
    print("|---|---|---|---|---|")
    for spec in rules:
        r = parse_stop_when(spec)
        stop = None
        for t in range(1, len(h)):
            fired = decide(r, h[: t + 1])
            if fired:
                stop = (t, fired)
                break
        if stop is None:
            print(f"| `{spec}` | never (ran {len(h) - 1}) | round {len(h) - 1} | {h[-1]['eval_reward']:.3f} | - |")
            continue
        t, fired = stop
        keep = t - 1 if any(f["rule"] != "max" for f in fired) else t
        figs = "; ".join(_fig(f) for f in fired)
        print(f"| `{spec}` | {t} | round {keep} | {h[keep]['eval_reward']:.3f} | {figs} |")


def _fig(f: dict) -> str:
    if f["rule"] == "winrate":
        return f"win rate {f['win_rate']:.3f}, low {f['low']:.3f}"
    if f["rule"] == "kl":
        return f"KL {f['kl']:.2f} > {f['budget']}"
    if f["rule"] == "plateau":
        return "gains " + ", ".join(f"{g:+.3f}" for g in f["gains"])
    return f"{f['rounds']} rounds"


if __name__ == "__main__":
    main()
