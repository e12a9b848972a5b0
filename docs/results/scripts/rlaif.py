"""RLAIF and Constitutional AI on the bundled task (docs/results/rlaif.md), one seed per call.

    .venv/bin/python docs/results/scripts/rlaif.py --seed 0 --out runs/rlaif [--prompts 300] [--stages judge,bias,dpo,rl,cai]

Every stage goes through the commands' library functions (`alignkit label` = run_label, `alignkit train` =
run_train, `alignkit constitution revise|prefs` = run_revise / run_preferences, `alignkit eval` =
evaluate_policy) with the task's judge LM (`task-judge`, alignkit/synthetic/judge_lm.py), and writes
OUT/seed{S}/results.json; a stage whose result is already there is reused (rerun to resume).

1. judge: K=4 samples of the SFT model on --prompts training prompts, 2 disjoint pairs per prompt. The
   simulated human (Bradley-Terry labeller on r*, temperature 0.3) and the judge LM (`alignkit label`,
   both orders) label the same pairs: agreement with r* (one order; both averaged), position
   consistency, P(first shown preferred). bias: each pair's two one-order judgments, for the figure.
2. dpo: DPO (quickstart's settings) on the human labels and on the AI labels (one label per pair for
   both: an equal label budget); each evaluated against the SFT model on held-out prompts under r*, and
   against each other (same prompts, same sampling seed).
3. rl: distilled RLAIF (a Bradley-Terry reward model on the AI pairs with their probabilities as soft
   labels, then GRPO on it) vs direct RLAIF (GRPO with the judge LM's P(sample > the SFT model's greedy
   answer) as the reward); the same GRPO settings, prompts and budget.
4. cai: a critique-revision round (`constitution revise`: the SFT model answers, the judge LM critiques
   and revises under the task's constitution, 2 rounds) -> SFT (SL-CAI) -> `constitution prefs` (the
   SL-CAI model's two samples per prompt, the judge LM's multiple-choice choice) -> DPO (RL-CAI).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from alignkit import plugins  # noqa: E402,F401  (task-judge, truth)
from alignkit.data.convert import write_jsonl  # noqa: E402
from alignkit.data.readers import read_records  # noqa: E402
from alignkit.data.records import Pairwise  # noqa: E402
from alignkit.registry import run_train  # noqa: E402
from alignkit.synthetic import metrics  # noqa: E402
from alignkit.synthetic.base import MAX_LENGTH, WorldConfig, build_base, read_manifest  # noqa: E402
from alignkit.synthetic.evaluate import EVAL_SAMPLING, evaluate_policy  # noqa: E402
from alignkit.synthetic.judge_lm import CONSTITUTION, TEMPLATE, build_judge_lm  # noqa: E402
from alignkit.synthetic.labelers import LabelerConfig, PairwiseLabeler  # noqa: E402
from alignkit.synthetic.prompts import as_chat, parse_prompt, sample_prompts  # noqa: E402
from alignkit.synthetic.reward import true_reward  # noqa: E402

DPO = {"beta": 0.3, "learning_rate": 2e-4, "epochs": 2.0, "batch_size": 16, "lr_scheduler": "cosine",
       "warmup_ratio": 0.1, "eval_fraction": 0.1, "max_length": MAX_LENGTH, "num_threads": 1, "progress": False}
RM = {"learning_rate": 1e-4, "epochs": 2.0, "batch_size": 16, "eval_fraction": 0.1, "max_length": MAX_LENGTH,
      "num_threads": 1, "progress": False}
GRPO = {"samples_per_prompt": 4, "prompts_per_step": 8, "max_new_tokens": 48, "learning_rate": 2e-4,
        "lr_scheduler": "constant", "batch_size": 32, "eval_fraction": 0.0, "max_length": MAX_LENGTH,
        "num_threads": 1, "progress": False, "eval_samples": 1}


def quiet(*a, **k):
    pass


def evaluate(model, baseline, args, seed) -> dict:
    sampling = dataclasses.replace(EVAL_SAMPLING, batch_size=128)
    ev = evaluate_policy(str(model), baseline=str(baseline), n_prompts=args.eval_prompts, seed=seed, split="heldout",
                         sampling=sampling, keep_samples=args.eval_prompts, nll_demos=0, log=quiet)
    return {"policy": ev["policy"], "baseline": ev["baseline_metrics"], "win_rate": ev["win_rate"],
            "texts": [s["policy"] for s in ev["samples"]], "prompts": [s["prompt"] for s in ev["samples"]]}


def head_to_head(a: dict, b: dict) -> dict:
    """Win rate of a over b under r*: both sampled on the same held-out prompts with the same seed."""
    assert a["prompts"] == b["prompts"]
    return metrics.win_rate([true_reward(p, t) for p, t in zip(a["prompts"], a["texts"])],
                            [true_reward(p, t) for p, t in zip(b["prompts"], b["texts"])])


def summary(ev: dict) -> dict:
    keep = ("mean_reward", "harmlessness", "over_refusal", "on_topic", "rude", "accuracy", "kl_to_ref",
            "length_tokens")
    return {**{k: ev["policy"].get(k) for k in keep}, "win_rate_vs_sft": ev["win_rate"]["win_rate"]}


def stage(results: dict, name: str, path: Path, fn):
    if name in results:
        print(f"[{name}] reusing {path}")
        return results[name]
    t = time.time()
    print(f"[{name}] ...", flush=True)
    results[name] = fn()
    results[name]["seconds"] = round(time.time() - t, 1)
    path.write_text(json.dumps(results, indent=1, default=str))
    print(f"[{name}] done in {results[name]['seconds']:.0f}s", flush=True)
    return results[name]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/rlaif")
    ap.add_argument("--prompts", type=int, default=300, help="training prompts for the labelled pairs (2 pairs each)")
    ap.add_argument("--eval-prompts", type=int, default=400)
    ap.add_argument("--rl-iterations", type=int, default=40)
    ap.add_argument("--cai-prompts", type=int, default=300, help="prompts of the revision round and of the preferences")
    ap.add_argument("--stages", default="judge,bias,dpo,rl,cai")
    args = ap.parse_args()
    torch.set_num_threads(1)
    s = args.seed
    out = Path(args.out) / f"seed{s}"
    out.mkdir(parents=True, exist_ok=True)
    res_path = out / "results.json"
    results = json.loads(res_path.read_text()) if res_path.is_file() else {}
    results["args"] = vars(args)
    stages = args.stages.split(",")

    sft = build_base(WorldConfig(), log=quiet)
    judge_dir = build_judge_lm()
    judge = f"llm-pair:hf:{judge_dir},template={TEMPLATE},batch_size=32"
    results["models"] = {"sft": str(sft), "judge": str(judge_dir)}
    results["judge_build"] = read_manifest(judge_dir) or json.loads((judge_dir.parent / "judge.json").read_text())

    # ---- 1. the same pairs, labelled by the simulated human and by the judge LM ------------------------
    def judge_stage():
        from alignkit.judges.label import LabelConfig, run_label
        from alignkit.models.generate import SamplingConfig
        from alignkit.synthetic.candidates import sample_from_model
        infos = sample_prompts(args.prompts, "train", seed=s)
        cands = sample_from_model(str(sft), infos, 4, SamplingConfig(max_new_tokens=48, temperature=1.0, top_p=1.0,
                                                                     batch_size=64), seed=s, progress=False)
        rows, human = [], []
        lab = PairwiseLabeler(LabelerConfig(temperature=0.3, seed=s))
        for i, (info, c) in enumerate(zip(infos, cands)):
            order = list(range(4))
            random.Random(f"pairs|{s}|{i}").shuffle(order)
            for a, b in ((order[0], order[1]), (order[2], order[3])):
                if c[a] == c[b]:
                    continue
                prompt = as_chat(info.text)
                rows.append({"prompt": prompt, "completions": [c[a], c[b]],
                             "scores": [true_reward(info, c[a]), true_reward(info, c[b])]})
                human.append(lab.label(prompt, c[a], c[b]))
        with open(out / "pairs_rstar.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        write_jsonl(human, out / "pairs_human.jsonl")
        decided = [(h, r) for h, r in zip(human, rows) if r["scores"][0] != r["scores"][1]]
        human_agree = sum((true_reward(h.prompt, h.chosen) > true_reward(h.prompt, h.rejected)) for h, _ in decided)
        # `alignkit label` with the judge LM: both orders (the default) and one order only
        reports = {}
        for name, spec in (("debiased", judge), ("one_order", judge + ",debias=0")):
            reports[name] = run_label(LabelConfig(judge=spec, data=str(out / "pairs_rstar.jsonl"),
                                                  output=str(out / f"pairs_ai_{name}.jsonl"), batch_size=32, seed=s),
                                      log=quiet)
        ai = [json.loads(x) for x in (out / "pairs_ai_debiased.jsonl").read_text().splitlines()]
        probs = [r["judge_probability"] for r in ai]
        return {"pairs": len(rows), "pairs_with_r_star_gap": len(decided),
                "human_agreement": human_agree / max(len(decided), 1),
                "judge": {k: {"agreement": v["agreement"], "agreement_one_order": v["agreement_one_order"],
                              "position_consistency": v["position_consistency"],
                              "first_position_preferred": v["first_position_preferred"], "usage": v["usage"],
                              "rows": v["rows"]} for k, v in reports.items()},
                "confidence_histogram": [sum(lo <= p < lo + 0.05 for p in probs) for lo in
                                         [0.5 + 0.05 * k for k in range(10)]]}

    if "judge" in stages:
        stage(results, "judge", res_path, judge_stage)

    # ---- 1b. per pair, both one-order judgments (for the position-bias figure) ---------------------------
    def bias_stage():
        from alignkit.rewards.specs import judge_from_spec
        rows = [json.loads(x) for x in (out / "pairs_rstar.jsonl").read_text().splitlines()]
        j = judge_from_spec(judge)
        got = j.judge_pairs([r["prompt"] for r in rows], [r["completions"][0] for r in rows],
                            [r["completions"][1] for r in rows])
        return {"forward": [g.forward for g in got], "backward": [g.backward for g in got],
                "r_star": [r["scores"] for r in rows]}

    if "bias" in stages:
        stage(results, "bias", res_path, bias_stage)

    # ---- 2. RLAIF vs RLHF at one label budget: DPO on each ----------------------------------------------
    def dpo_stage():
        human, _ = read_records(str(out / "pairs_human.jsonl"))
        ai = [Pairwise(r.prompt, r.chosen, r.rejected) for r in read_records(str(out / "pairs_ai_debiased.jsonl"))[0]]
        one = [Pairwise(r.prompt, r.chosen, r.rejected) for r in read_records(str(out / "pairs_ai_one_order.jsonl"))[0]]
        evs = {}
        for name, recs in (("rlhf", human), ("rlaif", ai), ("rlaif_one_order", one)):
            summ = run_train("dpo", str(sft), recs, str(out / f"dpo_{name}"), {**DPO, "seed": s}, log=quiet)
            evs[name] = evaluate(out / f"dpo_{name}", sft, args, s)
            evs[name]["train"] = {"pairs": len(recs), "eval_end": summ.get("eval_end")}
        return {"arms": {k: {**summary(v), "pairs": v["train"]["pairs"]} for k, v in evs.items()},
                "sft": summary({"policy": evs["rlhf"]["baseline"], "win_rate": {"win_rate": None}}),
                "rlaif_vs_rlhf": head_to_head(evs["rlaif"], evs["rlhf"]),
                "rlaif_one_order_vs_rlaif": head_to_head(evs["rlaif_one_order"], evs["rlaif"])}

    if "dpo" in stages:
        stage(results, "dpo", res_path, dpo_stage)

    # ---- 3. distilled vs direct RLAIF, GRPO on both ------------------------------------------------------
    def rl_stage():
        ai = read_records(str(out / "pairs_ai_debiased.jsonl"))[0]  # weight = the judge's probability
        rm = run_train("rm", str(sft), ai, str(out / "rm_ai"), {**RM, "seed": s}, log=quiet)
        arms = {"distilled": f"rm:{out / 'rm_ai'}", "direct": judge + f",baseline={sft},baseline_tokens=48"}
        evs, train = {}, {}
        for name, reward in arms.items():
            t = time.time()
            summ = run_train("grpo", str(sft), None, str(out / f"grpo_{name}"),
                             {**GRPO, "reward": reward, "iterations": args.rl_iterations, "seed": s}, log=quiet)
            train[name] = {"seconds": round(time.time() - t, 1), "eval_end": summ.get("eval_end")}
            evs[name] = evaluate(out / f"grpo_{name}", sft, args, s)
        return {"rm": {"pairs": len(ai), "eval_start": rm.get("eval_start"), "eval_end": rm.get("eval_end")},
                "arms": {k: {**summary(v), **train[k]} for k, v in evs.items()},
                "direct_vs_distilled": head_to_head(evs["direct"], evs["distilled"]),
                "rollouts": args.rl_iterations * GRPO["prompts_per_step"] * GRPO["samples_per_prompt"]}

    if "rl" in stages:
        stage(results, "rl", res_path, rl_stage)

    # ---- 4. Constitutional AI: a critique-revision round end to end ----------------------------------------
    def cai_stage():
        from alignkit.judges.constitution import (PreferenceConfig, ReviseConfig, draw, read_constitution,
                                                  run_preferences, run_revise)
        from alignkit.synthetic.judge_lm import critique_text
        infos = sample_prompts(2 * args.cai_prompts, "train", seed=s + 1000)
        for name, part in (("cai_prompts_sl", infos[: args.cai_prompts]), ("cai_prompts_rl", infos[args.cai_prompts:])):
            with open(out / f"{name}.jsonl", "w") as f:
                f.writelines(json.dumps({"prompt": as_chat(p.text)}) + "\n" for p in part)
        fb = f"hf:{judge_dir},batch_size=32"
        rev = run_revise(ReviseConfig(model=f"hf:{sft},batch_size=32", critic=fb, data=str(out / "cai_prompts_sl.jsonl"),
                                      output=str(out / "sl_cai.jsonl"), constitution=str(CONSTITUTION),
                                      principles="all", rounds=2, max_tokens=48, batch_size=32, seed=s), log=quiet)
        rows = [json.loads(x) for x in (out / "sl_cai.jsonl").read_text().splitlines()]
        pool = {p.name: p for p in read_constitution(str(CONSTITUTION)).principles}
        crit_ok = crit_n = 0
        first, final = [], []
        prompts = []
        for r in rows:
            text = r["prompt"][0]["content"]
            info = parse_prompt(text)
            prompts.append(text)
            current = r["initial_response"]
            first.append(current)
            for h in r["revisions"]:
                flawed, _ = critique_text(h["principle"], info, current)
                crit_n += 1
                crit_ok += h["critique"].strip().lower().startswith("yes") == flawed
                if h["revision"]:
                    current = h["revision"]
            final.append(r["completion"][0]["content"])
        before, after = metrics.policy_metrics(prompts, first), metrics.policy_metrics(prompts, final)
        sl_recs = read_records(str(out / "sl_cai.jsonl"))[0]
        run_train("sft", str(sft), sl_recs, str(out / "sl_cai_model"),
                  {"learning_rate": 2e-4, "epochs": 2.0, "batch_size": 16, "lr_scheduler": "cosine",
                   "warmup_ratio": 0.1, "eval_fraction": 0.1, "max_length": MAX_LENGTH, "num_threads": 1,
                   "progress": False, "seed": s}, log=quiet)
        ev_sl = evaluate(out / "sl_cai_model", sft, args, s)
        slm = out / "sl_cai_model"
        prefs = run_preferences(PreferenceConfig(feedback=fb, policy=f"hf:{slm},batch_size=32",
                                                 data=str(out / "cai_prompts_rl.jsonl"), output=str(out / "rl_cai_prefs.jsonl"),
                                                 samples=2, max_tokens=48, constitution=str(CONSTITUTION),
                                                 principles="all", batch_size=32, seed=s), log=quiet)
        pref_rows = [json.loads(x) for x in (out / "rl_cai_prefs.jsonl").read_text().splitlines()]
        gaps = [(true_reward(r["prompt"], r["chosen"][0]["content"]), true_reward(r["prompt"], r["rejected"][0]["content"]))
                for r in pref_rows]
        decided = [(a, b) for a, b in gaps if a != b]
        pref_recs = [Pairwise(r.prompt, r.chosen, r.rejected) for r in read_records(str(out / "rl_cai_prefs.jsonl"))[0]]
        run_train("dpo", str(slm), pref_recs, str(out / "rl_cai_model"), {**DPO, "seed": s}, log=quiet)
        ev_rl = evaluate(out / "rl_cai_model", sft, args, s)
        by_principle = {}
        for r, (a, b) in zip(pref_rows, gaps):
            if a != b:
                d = by_principle.setdefault(r["judge_principle"], [0, 0])
                d[0] += a > b
                d[1] += 1
        return {"revise": {k: rev[k] for k in ("rows", "changed_rate", "revisions_changed", "empty_revisions",
                                               "principle_counts", "usage")},
                "critique_accuracy": crit_ok / max(crit_n, 1), "critiques": crit_n,
                "responses_before": before, "responses_after": after,
                "sl_cai": summary(ev_sl),
                "prefs": {"rows": prefs["rows"], "position_consistency": prefs["position_consistency"],
                          "first_position_preferred": prefs["first_position_preferred"],
                          "agreement_with_r_star": sum(a > b for a, b in decided) / max(len(decided), 1),
                          "pairs_with_r_star_gap": len(decided),
                          "agreement_by_principle": {k: v[0] / v[1] for k, v in by_principle.items()}},
                "rl_cai": summary(ev_rl), "rl_cai_vs_sl_cai": head_to_head(ev_rl, ev_sl),
                "sft": summary({"policy": ev_sl["baseline"], "win_rate": {"win_rate": None}})}

    if "cai" in stages:
        stage(results, "cai", res_path, cai_stage)
    res_path.write_text(json.dumps(results, indent=1, default=str))
    print(json.dumps({k: v for k, v in results.items() if k not in ("judge_build",)}, indent=1, default=str)[:6000])


if __name__ == "__main__":
    main()
