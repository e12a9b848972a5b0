"""`alignkit world compare`: train several methods on the same on-policy labels of the bundled task and
compare them under the ground truth r*.

For each seed s (prompts, sampling, labels, data order and evaluation all follow it):
1. sample K responses per training prompt from the SFT base model at temperature 1, once
   (cached in OUT/seed{s}/candidates.json and reused by every method and every later run);
2. label them with the simulated labeler (labelers.py) in the feedback shape each method eats, at one
   label budget: every shape sees the same prompts and the same K candidates per prompt:
   - pairwise, pairs="best-worst": the labeler reads all K and judges its best-vs-worst pair (as
     quickstart does): one pair per prompt;
   - pairwise, pairs="disjoint": K//2 disjoint random pairs per prompt, each judged on its own;
   - binary: one thumbs up/down per candidate (K per prompt);
   - listwise: one Plackett-Luce ranking of the K candidates per prompt;
   - negative: the binary labeler's thumbs-down candidates only (the same labeller calls as binary);
3. `run_train(method, sft, records, OUT/seed{s}/ARM, overrides)` (alignkit/train/api.py);
4. `evaluate_policy(ARM, baseline=sft)` on held-out prompts (alignkit/eval/evaluate.py).

OUT/results.json holds every seed and the per-metric median over seeds; OUT/results.md the same as
markdown tables. An arm whose result.json was written with the same settings is reused, so an
interrupted comparison resumes where it stopped.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import option, parse_scalar
from .base import MAX_LENGTH
from .labelers import BinaryLabeler, LabelerConfig, ListwiseLabeler, PairwiseLabeler
from .prompts import as_chat, sample_prompts

# The run options quickstart uses for DPO; per-arm or global overrides replace them.
TRAIN_DEFAULTS = {"learning_rate": 5e-4, "epochs": 2.0, "batch_size": 16, "lr_scheduler": "cosine",
                  "warmup_ratio": 0.1, "eval_fraction": 0.1, "max_length": MAX_LENGTH}
PAIR_DESIGNS = ("best-worst", "disjoint")
# held-out implicit-reward accuracy, under the name each loss family logs it
ACC_KEYS = ("rewards/accuracy", "rank_accuracy", "bco/accuracy")
METRICS = (("true reward", "mean_reward"), ("win rate", "win_rate"), ("harmless", "harmlessness"),
           ("over-refusal", "over_refusal"), ("accuracy", "accuracy"), ("KL", "kl_to_ref"),
           ("len tok", "length_tokens"), ("len words", "length_words"), ("impl. acc start", "acc_start"),
           ("impl. acc end", "acc_end"))


@dataclass(frozen=True)
class CompareConfig:
    train_prompts: int = option(600, ge=1)  # training-split prompts to sample candidates for
    samples_per_prompt: int = option(4, ge=1)  # K candidates per prompt, sampled from the SFT model at temperature 1
    max_new_tokens: int = option(48, ge=1)  # longest sampled response (candidates and evaluation)
    source: str = option("model", choices=("model", "corpus"))  # candidates: model (sampled from the SFT model) | corpus (the behaviour mix; no model)
    pairs: str = option("best-worst", choices=("best-worst", "disjoint"))  # pairwise labels: best-worst (one pair of the K) | disjoint (K//2 pairs)
    eval_prompts: int = option(400, ge=1)  # held-out prompts for evaluate_policy
    seeds: tuple = (0,)  # one full run per seed; tables report the median
    candidates_dir: str = ""  # where candidates are cached (DIR/seed{s}/candidates.json); "" = the output folder
    train: dict = field(default_factory=dict)  # run/method options for every arm, over TRAIN_DEFAULTS


MINI_COMPARE = CompareConfig(train_prompts=128, samples_per_prompt=4, max_new_tokens=16, eval_prompts=16, source="corpus",
                             train={"epochs": 3.0, "batch_size": 8, "learning_rate": 2e-3, "eval_fraction": 0.2})  # smoke tests (TINY_WORLD)


@dataclass(frozen=True)
class Arm:
    label: str  # the row name (and output folder)
    method: str  # a registered loss (`alignkit methods`)
    overrides: dict = field(default_factory=dict)  # this arm's options, over the config's `train`


def parse_arms(spec: str) -> list:
    """"dpo,simpo,rdpo2=r-dpo" -> arms; LABEL=METHOD names a second arm of one method."""
    arms = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        label, _, method = item.partition("=")
        arms.append(Arm(label, method or label))
    return arms


def _key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def sample_candidates(sft: Path, seed: int, cfg: CompareConfig, folder: Path, progress: bool, log) -> tuple:
    """-> (PromptInfo list, K texts per prompt), from folder/candidates.json when it matches."""
    infos = sample_prompts(cfg.train_prompts, "train", seed=seed)
    key = _key({"sft": str(sft), "seed": seed, "n": cfg.train_prompts, "k": cfg.samples_per_prompt,
                "max_new_tokens": cfg.max_new_tokens, "source": cfg.source})
    path = folder / "candidates.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            log(f"seed {seed}: reusing {len(saved['candidates'])} prompts' candidates from {path}")
            return infos, saved["candidates"]
    if cfg.source == "corpus":
        from .candidates import sample_from_corpus
        cands = sample_from_corpus(infos, cfg.samples_per_prompt, seed=seed)
    elif cfg.source != "model":
        from ..errors import ConfigError
        raise ConfigError(f"source must be model or corpus, got {cfg.source!r}")
    else:
        cands = _sample(sft, infos, seed, cfg, progress, log)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "prompts": [p.text for p in infos], "candidates": cands}))
    return infos, cands


def _sample(sft: Path, infos: list, seed: int, cfg: CompareConfig, progress: bool, log) -> list:
    from ..models.generate import SamplingConfig
    from .candidates import sample_from_model
    log(f"seed {seed}: sampling {cfg.samples_per_prompt} responses for each of {len(infos)} prompts from {sft}")
    sampling = SamplingConfig(max_new_tokens=cfg.max_new_tokens, temperature=1.0, top_p=1.0, batch_size=64)
    return sample_from_model(str(sft), infos, cfg.samples_per_prompt, sampling, seed=seed, progress=progress)


def make_labels(feedback: str, infos: list, cands: list, labeler: LabelerConfig, pairs: str = "best-worst",
                seed: int = 0) -> tuple:
    """-> (records, budget) for one feedback shape; budget counts labeller calls and responses judged."""
    from ..errors import ConfigError
    prompts = [as_chat(p.text) for p in infos]
    calls = judged = 0
    recs = []
    if feedback == "pairwise":
        lab = PairwiseLabeler(labeler)
        if pairs not in PAIR_DESIGNS:
            raise ConfigError(f"pairs must be one of {', '.join(PAIR_DESIGNS)}, got {pairs!r}")
        for i, (p, c) in enumerate(zip(prompts, cands)):
            if pairs == "best-worst":
                calls, judged = calls + 1, judged + len(c)
                rec = lab.label_best_vs_worst(p, c)
                recs += [rec] if rec is not None else []
                continue
            order = list(range(len(c)))
            random.Random(f"pairs|{seed}|{i}").shuffle(order)
            for a, b in zip(order[0::2], order[1::2]):
                calls, judged = calls + 1, judged + 2
                if c[a] != c[b]:  # two identical texts carry no preference
                    recs.append(lab.label(p, c[a], c[b]))
    elif feedback in ("binary", "negative"):
        lab = BinaryLabeler(labeler)
        recs = [lab.label(p, y) for p, c in zip(prompts, cands) for y in c]
        calls = judged = len(recs)
        if feedback == "negative":
            recs = [r for r in recs if not r.label]
    elif feedback == "listwise":
        lab = ListwiseLabeler(labeler)
        recs = [lab.label(p, c) for p, c in zip(prompts, cands)]
        calls, judged = len(recs), sum(len(c) for c in cands)
    else:
        raise ConfigError(f"world compare has no labeler for feedback {feedback!r}")
    return recs, {"labeller_calls": calls, "responses_judged": judged, "records": len(recs)}


def implicit_accuracy(ev: dict):
    return next((ev[k] for k in ACC_KEYS if k in (ev or {})), None)


def heldout_implicit(sft: Path, folder: Path, records: list, overrides: dict, feedback: str) -> tuple:
    """(start, end) implicit accuracy of log pi/pi_SFT on the part of `records` training held out, for
    feedback shapes whose losses log none comparable: thumbs -> the AUC between thumbs-up and thumbs-down
    responses; rankings -> the accuracy on the pairs each list implies. The start scores the SFT model
    against itself (every reward 0: 0.5)."""
    from ..data.convert import split_records
    from ..rewards.evaluate import as_pairs, binary_report, preference_report
    from ..rewards.implicit import ImplicitRewardJudge
    _, held = split_records(records, overrides.get("eval_fraction", 0.0), overrides.get("seed", 0))
    if feedback == "binary":
        if len({bool(r.label) for r in held}) < 2:
            return None, None
        return tuple(binary_report(ImplicitRewardJudge(str(m), str(sft), beta=0.1), held)["auc"] for m in (sft, folder))
    pairs = as_pairs(held)
    if not pairs:
        return None, None
    return tuple(preference_report(ImplicitRewardJudge(str(m), str(sft), beta=0.1), pairs)["accuracy"]
                 for m in (sft, folder))


def _quiet(*args, **kwargs):
    pass


def run_arm(arm: Arm, sft: Path, records: list, folder: Path, seed: int, cfg: CompareConfig, key: str,
            progress: bool, log) -> dict:
    """Train one arm and evaluate it against the SFT model (or reuse its saved result)."""
    from ..synthetic.evaluate import EVAL_SAMPLING, evaluate_policy
    from ..losses.registry import LOSSES
    from ..registry import run_train
    done = folder / "result.json"
    if done.is_file():
        res = json.loads(done.read_text())
        if res.get("key") == key:
            log(f"seed {seed} {arm.label}: reusing {done}")
            return res
    shutil.rmtree(folder, ignore_errors=True)
    overrides = {**TRAIN_DEFAULTS, **cfg.train, **arm.overrides, "seed": seed, "progress": progress}
    log(f"seed {seed} {arm.label}: {arm.method} on {len(records)} records")
    t = time.time()
    summary = run_train(arm.method, str(sft), records, str(folder), overrides=overrides, log=_quiet)
    if summary.get("interrupted"):
        raise KeyboardInterrupt
    t_train = time.time() - t
    sampling = dataclasses.replace(EVAL_SAMPLING, max_new_tokens=cfg.max_new_tokens, batch_size=128)
    ev = evaluate_policy(str(folder), baseline=str(sft), n_prompts=cfg.eval_prompts, seed=seed,
                         split="heldout", sampling=sampling, keep_samples=8, log=_quiet)
    s, e = summary.get("eval_start") or {}, summary.get("eval_end") or {}
    row = {k: ev["policy"].get(k) for _, k in METRICS if k in ev["policy"]}
    row.update(win_rate=ev["win_rate"]["win_rate"], acc_start=implicit_accuracy(s), acc_end=implicit_accuracy(e))
    feedback = LOSSES[arm.method].feedback
    if feedback in ("binary", "listwise"):  # one measure across each shape's losses (see heldout_implicit)
        row["acc_start"], row["acc_end"] = heldout_implicit(sft, folder, records, overrides, feedback)
    res = {"key": key, "label": arm.label, "method": arm.method, "overrides": overrides, "row": row,
           "win_rate": ev["win_rate"], "eval_start": s, "eval_end": e, "steps": summary.get("steps"),
           "train_examples": summary.get("train_examples"), "sft": ev["baseline_metrics"],
           "samples": ev.get("samples", []), "seconds": {"train": round(t_train, 1),
                                                         "eval": round(time.time() - t - t_train, 1)}}
    log(f"seed {seed} {arm.label}: reward {row['mean_reward']:.3f} win {row['win_rate']:.3f} "
        f"len {row['length_tokens']:.1f} impl.acc {row['acc_start']} -> {row['acc_end']}")
    done.write_text(json.dumps(res, indent=1))
    return res


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def aggregate(per_seed: dict) -> dict:
    """{seed: {"arms": {label: result}, "sft": metrics}} -> {label: {metric: median over seeds}}."""
    out = {}
    labels = list(dict.fromkeys(lbl for s in per_seed.values() for lbl in s["arms"]))
    keys = [k for _, k in METRICS]
    out["SFT"] = {k: _median([s["sft"].get(k) for s in per_seed.values()]) for k in keys}
    for lbl in labels:
        rows = [s["arms"][lbl]["row"] for s in per_seed.values() if lbl in s["arms"]]
        out[lbl] = {k: _median([r.get(k) for r in rows]) for k in keys}
    return out


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"


def markdown(results: dict) -> str:
    """The median table, then each seed's true reward / win rate / length."""
    med, seeds = results["median"], results["seeds"]
    methods = {lbl: a["method"] for s in seeds.values() for lbl, a in s["arms"].items()}
    head = "| arm | method | " + " | ".join(h for h, _ in METRICS) + " |"
    lines = [f"Median over seeds {', '.join(map(str, seeds))} ({results['config']['eval_prompts']} held-out "
             "prompts each; win rate against the SFT model under r*; impl. acc = held-out implicit-reward "
             "accuracy at the first and last step of training; for thumbs-labelled methods the held-out AUC "
             "of log pi/pi_SFT between thumbs-up and thumbs-down, for ranking methods its accuracy on the "
             "held-out lists' pairs).", "", head,
             "|" + "---|" * (len(METRICS) + 2)]
    for lbl, row in med.items():
        lines.append(f"| {lbl} | {methods.get(lbl, '-')} | " + " | ".join(_fmt(row[k]) for _, k in METRICS) + " |")
    lines += ["", "Per seed: true reward / win rate / length (tokens).", "",
              "| arm | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|" + "---|" * (len(seeds) + 1)]
    for lbl in med:
        cells = []
        for s in seeds.values():
            r = s["sft"] if lbl == "SFT" else s["arms"].get(lbl, {}).get("row")
            cells.append("-" if r is None else f"{_fmt(r.get('mean_reward'))} / {_fmt(r.get('win_rate'))} / "
                         f"{_fmt(r.get('length_tokens'))}")
        lines.append(f"| {lbl} | " + " | ".join(cells) + " |")
    budget = {fb: b for s in seeds.values() for fb, b in s["budget"].items()}
    lines += ["", "Label budget per seed: " + "; ".join(
        f"{fb}: {b['labeller_calls']} labeller calls, {b['responses_judged']} responses judged, "
        f"{b['records']} records" for fb, b in budget.items()) + "."]
    return "\n".join(lines) + "\n"


def run_compare(arms: list, cfg: CompareConfig = CompareConfig(), labeler: LabelerConfig = LabelerConfig(),
                output: str = "runs/compare", world=None, cache_dir: str | None = None,
                base_model: str | None = None, progress: bool = False, log=print) -> dict:
    """Every arm on every seed; -> results dict (also OUT/results.json and OUT/results.md)."""
    from ..errors import ConfigError
    from ..losses.registry import LOSSES
    from .base import WorldConfig, build_base
    if not arms:
        raise ConfigError("world compare needs at least one method")
    if labeler.population:
        raise ConfigError("world compare labels with one labeller on r*; for the annotator population use "
                          "`world export --population` (pairwise.jsonl) or the judge `population`")
    for a in arms:
        if a.method not in LOSSES:
            raise ConfigError(f"world compare trains registered losses; {a.method!r} is not one "
                              f"(`alignkit methods` lists them)")
    if len({a.label for a in arms}) != len(arms):
        raise ConfigError("two arms share a label; name them LABEL=METHOD")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    world = world or WorldConfig()
    sft = Path(base_model) if base_model else build_base(world, cache_dir=cache_dir, log=log)
    per_seed = {}
    for seed in cfg.seeds:
        folder = out / f"seed{seed}"
        cand_folder = Path(cfg.candidates_dir) / f"seed{seed}" if cfg.candidates_dir else folder
        infos, cands = sample_candidates(sft, seed, cfg, cand_folder, progress, log)
        lab = dataclasses.replace(labeler, seed=seed)
        labels, budget = {}, {}
        entry = {"arms": {}, "sft": None, "budget": budget}
        for arm in arms:
            fb = LOSSES[arm.method].feedback
            if fb not in labels:
                labels[fb], budget[fb] = make_labels(fb, infos, cands, lab, cfg.pairs, seed)
                from ..data.convert import write_jsonl
                write_jsonl(labels[fb], folder / f"labels_{fb}.jsonl")
            key = _key({"arm": dataclasses.asdict(arm), "train": {**TRAIN_DEFAULTS, **cfg.train},
                        "labeler": dataclasses.asdict(lab), "pairs": cfg.pairs if fb == "pairwise" else None,
                        "source": cfg.source, "n": cfg.train_prompts,
                        "k": cfg.samples_per_prompt, "tokens": cfg.max_new_tokens, "eval": cfg.eval_prompts,
                        "sft": str(sft)})
            res = run_arm(arm, sft, labels[fb], folder / arm.label, seed, cfg, key, progress, log)
            entry["arms"][arm.label] = res
            entry["sft"] = res["sft"]
        per_seed[seed] = entry
    results = {"config": {**dataclasses.asdict(cfg), "train_effective": {**TRAIN_DEFAULTS, **cfg.train}},
               "labeler": dataclasses.asdict(labeler), "base_model": str(sft),
               "arms": [dataclasses.asdict(a) for a in arms], "seeds": per_seed, "median": aggregate(per_seed)}
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out / "results.md").write_text(markdown(results))
    log("\n" + markdown(results))
    return results


def parse_sets(items: list, arms: list) -> tuple:
    """--set KEY=VALUE (every arm) / --set ARM.KEY=VALUE (one arm) -> (global dict, arms with theirs)."""
    from ..errors import ConfigError
    glob, per = {}, {a.label: dict(a.overrides) for a in arms}
    for item in items or []:
        key, eq, raw = item.partition("=")
        if not eq:
            raise ConfigError(f"--set expects KEY=VALUE or ARM.KEY=VALUE, got {item!r}")
        value = parse_scalar(raw)
        arm, dot, name = key.partition(".")
        if dot:
            if arm not in per:
                raise ConfigError(f"--set {item}: no arm named {arm!r} (arms: {', '.join(per)})")
            per[arm][name.replace("-", "_")] = value
        else:
            glob[key.replace("-", "_")] = value
    return glob, [dataclasses.replace(a, overrides=per[a.label]) for a in arms]

