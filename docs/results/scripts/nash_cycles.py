"""What a Bradley-Terry method does with a cycle of the annotator population (docs/results/nash.md).

    .venv/bin/python docs/results/scripts/nash_cycles.py --base BASE [--model NAME=DIR ...] [--rm DIR]
        --output OUT.json [--n-prompts 150] [--k 8]

1. The worked triple of tests/test_population.py (A helpful but rambling, B helpful but rude, C an over-refusal
   but polite; the majority prefers A > B > C > A): the population's P, the Bradley-Terry fit to it (the
   scores a BT reward model converges to on infinitely many of these labels), and the Nash equilibrium of
   the game P - 1/2 restricted to the three.
2. The base model's own answers: K samples per held-out prompt, the majority's cyclic triples among them;
   for each trained policy its restricted mixture over a triple, q_i proportional to pi(y_i | x), and the
   worst-case population win rate of that mixture against the triple's three answers (exactly 1/2 at the
   triple's Nash equilibrium, below it for any order-based choice), the share of triples whose top answer is
   r*'s best, and (with --rm) how a BT reward model trained on the population's labels orders them.
"""
from __future__ import annotations

import argparse
import json
import math
import random

import torch

from alignkit.synthetic.evaluate import load_policy, logprob_sums
from alignkit.synthetic.labelers import POPULATION, PopulationLabeler, find_cycles
from alignkit.synthetic.prompts import as_chat, sample_prompts
from alignkit.synthetic.reward import true_reward

PROMPT = "Tell me how to hack together a website at home."
TRIPLE = ("Start from a simple template and edit one page of the website. By the way, this reminds me of my cousin and a very big sandwich.",
          "Whatever. Start from a simple template and edit one page of the website.",
          "Sorry, I can't help with that. Hope this helps!")


def bt_fit(p: list) -> list:
    """Scores s maximising sum_{i != j} P_ij log sigma(s_i - s_j) (the Bradley-Terry MLE on the expected labels)."""
    n = len(p)
    s = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([s], max_iter=500, tolerance_grad=1e-12)
    P = torch.tensor(p, dtype=torch.float64)

    def closure():
        opt.zero_grad()
        d = s[:, None] - s[None, :]
        loss = -(P * torch.nn.functional.logsigmoid(d)).sum() + 1e-9 * (s ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return (s - s.mean()).tolist()


def nash_of_cycle(p: list) -> list:
    """The symmetric game M = P - 1/2 on a cycle a > b > c > a: q = (M_bc, M_ca, M_ab) / sum makes every pure
    answer's payoff against q zero (M antisymmetric)."""
    x, y, z = p[0][1] - 0.5, p[1][2] - 0.5, p[2][0] - 0.5
    q = [y / (x + y + z), z / (x + y + z), x / (x + y + z)]
    for j in range(3):
        assert abs(sum(q[i] * (p[i][j] - 0.5) for i in range(3) if i != j)) < 1e-9
    return q


def worst_case(q: list, p: list) -> float:
    """min over the three answers j of the mixture's population win rate sum_i q_i P(i > j) (P(i > i) = 1/2)."""
    return min(sum(q[i] * (p[i][j] if i != j else 0.5) for i in range(3)) for j in range(3))


def worked_triple() -> dict:
    lab = PopulationLabeler()
    p = [[lab.p_first(PROMPT, a, b) if a != b else 0.5 for b in TRIPLE] for a in TRIPLE]
    s = bt_fit(p)
    bt_p = [[1 / (1 + math.exp(-(s[i] - s[j]))) for j in range(3)] for i in range(3)]
    q = nash_of_cycle(p)
    best_bt = max(range(3), key=lambda i: s[i])
    r = [true_reward(PROMPT, y) for y in TRIPLE]
    return {"P": p, "bt_scores": s, "bt_P": bt_p, "bt_top": "ABC"[best_bt], "rstar": r, "nash": q,
            "worst_case_bt_top": worst_case([1.0 if i == best_bt else 0.0 for i in range(3)], p),
            "worst_case_nash": worst_case(q, p), "worst_case_uniform": worst_case([1 / 3] * 3, p),
            "edges_bt_respects": sum((s[a] > s[b]) for a, b in ((0, 1), (1, 2), (2, 0)))}


def corpus_cycles(n_prompts: int = 40, draws: int = 60, seed: int = 1) -> dict:
    """On the task's corpus answers (the SFT behaviour mix): the share of pairs r* orders strictly that the
    population's majority orders the same way, and how many prompts have a majority cycle among their answers."""
    import itertools
    from alignkit.synthetic.corpus import SFT_RATES, respond
    lab = PopulationLabeler()
    agree = strict = with_cycle = 0
    for info in sample_prompts(n_prompts, "train", seed=seed):
        rng = random.Random(str(info.text))
        answers = list(dict.fromkeys(respond(info, rng, SFT_RATES)[0] for _ in range(draws)))
        r = [true_reward(info.text, y) for y in answers]
        for i, j in itertools.combinations(range(len(answers)), 2):
            if r[i] != r[j]:
                strict += 1
                agree += lab.majority_prefers(info.text, answers[i], answers[j]) == (r[i] > r[j])
        with_cycle += bool(find_cycles(lab, info.text, answers, limit=1))
    return {"prompts": n_prompts, "pairs_ordered_by_rstar": strict, "majority_agrees": agree / strict,
            "prompts_with_a_cycle": with_cycle}


def sampled_cycles(base: str, n_prompts: int, k: int, seed: int) -> list:
    from alignkit.models.generate import HFGenerator, SamplingConfig
    from alignkit.synthetic.evaluate import EVAL_SAMPLING
    from alignkit.data.tokenize import Encoder
    model, tok = load_policy(base)
    infos = sample_prompts(n_prompts, "heldout", seed=seed)
    enc = Encoder.untruncated(tok)
    ids = [enc.prompt_ids(as_chat(p.text)) for p in infos for _ in range(k)]
    cfg = SamplingConfig(max_new_tokens=EVAL_SAMPLING.max_new_tokens, temperature=1.0, batch_size=64)
    outs = HFGenerator(model, tok).generate(ids, cfg, seed=seed)
    lab = PopulationLabeler()
    triples = []
    for i, info in enumerate(infos):
        texts = [tok.decode(o, skip_special_tokens=True).strip() for o in outs[i * k:(i + 1) * k]]
        rng = random.Random(f"{seed}|{i}")
        cyc = find_cycles(lab, info.text, texts)
        if cyc:
            a, b, c = rng.choice(cyc)
            p = [[lab.p_first(info.text, x, y) if x != y else 0.5 for y in (a, b, c)] for x in (a, b, c)]
            fav = {t.name: max(range(3), key=lambda n: t.utility(info.text, (a, b, c)[n])) for t in POPULATION}
            triples.append({"prompt": info.text, "answers": [a, b, c], "P": p, "favourite": fav,
                            "rstar": [true_reward(info.text, y) for y in (a, b, c)]})
    return triples


def whose_favourite(tops: list, triples: list) -> dict:
    """Share of triples whose top answer (by the model) is each annotator type's favourite."""
    return {t.name: sum(top == tr["favourite"][t.name] for top, tr in zip(tops, triples)) / len(triples)
            for t in POPULATION}


def policy_on_triples(path: str, base: str, triples: list) -> dict:
    from alignkit.data.tokenize import Encoder
    model, tok = load_policy(path)
    enc = Encoder.untruncated(tok)
    p_ids = [enc.prompt_ids(as_chat(t["prompt"])) for t in triples for _ in range(3)]
    c_ids = [enc.completion_ids(y) for t in triples for y in t["answers"]]
    lp = logprob_sums(model, p_ids, c_ids, tok.pad_token_id)
    worst, top_best, edges, tops = [], 0, 0, []
    for n, t in enumerate(triples):
        v = lp[3 * n: 3 * n + 3]
        tops.append(max(range(3), key=lambda i: v[i]))
        m = max(v)
        q = [math.exp(x - m) for x in v]
        q = [x / sum(q) for x in q]
        worst.append(worst_case(q, t["P"]))
        top_best += t["rstar"][max(range(3), key=lambda i: v[i])] == max(t["rstar"])
        edges += sum(v[a] > v[b] for a, b in ((0, 1), (1, 2), (2, 0)))
    nash = [worst_case(nash_of_cycle(t["P"]), t["P"]) for t in triples]
    return {"mean_worst_case": sum(worst) / len(worst), "nash_worst_case": sum(nash) / len(nash),
            "top_is_rstar_best": top_best / len(triples), "cycle_edges_respected": edges / (3 * len(triples)),
            "top_is_favourite_of": whose_favourite(tops, triples)}


def rm_on_triples(rm_dir: str, triples: list) -> dict:
    from alignkit.rewards.specs import judge_from_spec
    j = judge_from_spec(f"rm:{rm_dir}")
    s = j.score([as_chat(t["prompt"]) for t in triples for _ in range(3)], [y for t in triples for y in t["answers"]])
    top_best = edges = 0
    tops = []
    for n, t in enumerate(triples):
        v = s[3 * n: 3 * n + 3]
        tops.append(max(range(3), key=lambda i: v[i]))
        top_best += t["rstar"][max(range(3), key=lambda i: v[i])] == max(t["rstar"])
        edges += sum(v[a] > v[b] for a, b in ((0, 1), (1, 2), (2, 0)))
    return {"top_is_rstar_best": top_best / len(triples), "cycle_edges_respected": edges / (3 * len(triples)),
            "top_is_favourite_of": whose_favourite(tops, triples)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--model", action="append", default=[], help="NAME=DIR")
    ap.add_argument("--rm", default="")
    ap.add_argument("--n-prompts", type=int, default=150)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", required=True)
    ap.add_argument("--corpus-only", action="store_true", help="only the corpus measurement (no model needed)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    res = {"worked_triple": worked_triple(), "corpus": corpus_cycles()}
    print(json.dumps(res["corpus"]))
    if a.corpus_only:
        with open(a.output, "w") as f:
            json.dump(res, f, indent=1)
        return
    print(json.dumps(res["worked_triple"], indent=1))
    triples = sampled_cycles(a.base, a.n_prompts, a.k, a.seed)
    res["triples"] = len(triples)
    res["prompts"] = a.n_prompts
    print(f"{len(triples)} of {a.n_prompts} held-out prompts have a majority cycle among {a.k} base samples")
    res["policies"] = {}
    for name, path in [("base", a.base)] + [tuple(m.split("=", 1)) for m in a.model]:
        res["policies"][name] = policy_on_triples(path, a.base, triples)
        print(name, res["policies"][name])
    if a.rm:
        res["rm"] = rm_on_triples(a.rm, triples)
        print("rm", res["rm"])
    res["examples"] = triples[:5]
    with open(a.output, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
