"""Policies of the bundled task judged against each other by the intransitive annotator population.

    .venv/bin/python docs/results/scripts/nash_eval.py --base BASE --model NAME=DIR ... --output OUT.json
        [--n-prompts 400] [--seed 0]

Every model answers the same held-out prompts once (temperature 1, 48 new tokens, one shared sampling seed,
so differences come from the models). For each pair of models (X, Y): the population's win rate
W[X][Y] = mean over prompts of P_pop(x_i > y_i) (labelers.PopulationLabeler: the share of annotators
preferring x_i, each annotator a Bradley-Terry judge of its own utility), the win rate under r*
(ties count half), and per model the mean r*, harmlessness, over-refusal, KL to the base (k1 on its own
samples) and the Nash criterion: the worst-case population win rate against the other models.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from alignkit.synthetic import metrics
from alignkit.synthetic.evaluate import EVAL_SAMPLING, load_policy, logprob_sums, sample
from alignkit.synthetic.labelers import PopulationLabeler
from alignkit.synthetic.prompts import as_chat, sample_prompts
from alignkit.synthetic.reward import true_reward


def evaluate(models: dict, base: str, n_prompts: int, seed: int, log=print) -> dict:
    infos = sample_prompts(n_prompts, "heldout", seed=seed)
    prompts = [as_chat(p.text) for p in infos]
    base_model, base_tok = load_policy(base)
    texts, per_model = {}, {}
    for name, path in {"base": base, **models}.items():
        t = time.time()
        model, tok = (base_model, base_tok) if path == base else load_policy(path)
        p_ids, c_ids, out = sample(model, tok, prompts, EVAL_SAMPLING, seed)
        texts[name] = out
        m = metrics.policy_metrics(prompts, out)
        if path != base:
            pol = logprob_sums(model, p_ids, c_ids, tok.pad_token_id)
            ref = logprob_sums(base_model, p_ids, c_ids, tok.pad_token_id)
            m["kl_to_base"] = metrics.kl_k1(pol, ref)
        per_model[name] = {k: m[k] for k in ("mean_reward", "harmlessness", "over_refusal", "accuracy", "on_topic",
                                             "rude", "length_words")} | ({"kl_to_base": m["kl_to_base"]} if "kl_to_base" in m else {})
        log(f"{name}: r* {m['mean_reward']:.3f} ({time.time() - t:.0f}s)")
    lab = PopulationLabeler()
    names = list(texts)
    r = {n: [true_reward(p.text, y) for p, y in zip(infos, texts[n])] for n in names}
    pop, rstar, majority = {}, {}, {}
    for x in names:
        pop[x], rstar[x], majority[x] = {}, {}, {}
        for y in names:
            if x == y:
                continue
            ps = [lab.p_first(p.text, a, b) for p, a, b in zip(infos, texts[x], texts[y])]
            pop[x][y] = sum(ps) / len(ps)
            majority[x][y] = (sum(q > 0.5 for q in ps) + 0.5 * sum(q == 0.5 for q in ps)) / len(ps)
            rstar[x][y] = metrics.win_rate(r[x], r[y])["win_rate"]
    for x in names:
        others = [y for y in names if y != x]
        per_model[x]["worst_case_pop"] = min(pop[x][y] for y in others)
        per_model[x]["worst_case_against"] = min(others, key=lambda y: pop[x][y])
        per_model[x]["pop_vs_base"] = pop[x].get("base")
    return {"n_prompts": n_prompts, "seed": seed, "models": {"base": base, **models}, "per_model": per_model,
            "population_win_rate": pop, "majority_win_rate": majority, "rstar_win_rate": rstar,
            "samples": [{"prompt": infos[i].text, **{n: texts[n][i] for n in names}} for i in range(min(20, n_prompts))]}


def table(res: dict) -> str:
    names = list(res["per_model"])
    lines = ["| model | r* | harmless | over-refusal | KL to base | pop. win rate vs base | worst-case pop. win rate (vs) |",
             "|---|---|---|---|---|---|---|"]
    for n in names:
        m = res["per_model"][n]
        f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"| {n} | {f(m['mean_reward'])} | {f(m['harmlessness'])} | {f(m['over_refusal'])} | "
                     f"{f(m.get('kl_to_base'))} | {f(m['pop_vs_base'])} | {m['worst_case_pop']:.3f} ({m['worst_case_against']}) |")
    lines += ["", "population win rate of row vs column:", "",
              "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for x in names:
        lines.append(f"| {x} | " + " | ".join("-" if x == y else f"{res['population_win_rate'][x][y]:.3f}"
                                              for y in names) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--model", action="append", default=[], help="NAME=DIR")
    ap.add_argument("--n-prompts", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    models = dict(m.split("=", 1) for m in a.model)
    res = evaluate(models, a.base, a.n_prompts, a.seed)
    with open(a.output, "w") as f:
        json.dump(res, f, indent=1)
    print(table(res))


if __name__ == "__main__":
    main()
