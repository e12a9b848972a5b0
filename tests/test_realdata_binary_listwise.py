"""Real-data runs of issue 7's binary and listwise methods: each improves a held-out metric over the
start. A tiny random Llama (hidden 64, 2 layers, BPE vocab 512 trained on the training texts) is
trained with `run_train` and scored on prompts it never saw (see tests/realdata.py).

- kto, bco on TruthfulQA's thumbs-up/down answers: the implicit reward beta * (log pi - log pi_ref)
  must separate true from false answers of held-out questions (AUC; at the start policy == reference,
  so every reward is 0 and the AUC is exactly 0.5).
- lipo, pro, rrhf on alpaca_eval's five-response lists with a clear spread: the model's score
  (lipo: the implicit reward; pro/rrhf: the mean log-prob they rank by) must order the clearly
  ordered pairs of held-out lists (label gap > 0.1) more often than at the start.

Settings (lr 2e-3, ~100 steps, each method's default beta except KTO) are sized for a random-init
model in under ~40 s on 2 cores. KTO uses beta 0.5: with its default 0.1 the same run reaches a
held-out AUC of only ~0.58 (0.675 with 0.5); BCO and LiPO do as well or better with their defaults.
At this scale most of RRHF's gain comes from its SFT term on the best response: with rank_weight=0
the same run reaches a similar held-out accuracy (0.675 vs 0.640 for seed 0, 0.631 vs 0.648 for seed 1).
Chance level for the AUC with 200 + 200 held-out answers has a standard deviation of ~0.03, so the
0.6 bar is more than 3 of them above chance.
"""
from __future__ import annotations

import pytest

import realdata as R
from alignkit.api import run_train

pytestmark = [pytest.mark.slow, pytest.mark.shared]

MAX_LENGTH = 128
COMMON = dict(max_length=MAX_LENGTH, eval_fraction=0.0, progress=False, ref_cache="memory", seed=0)


@pytest.mark.parametrize("method,steps,beta", [("kto", 100, 0.5), ("bco", 120, 0.1)])
def test_binary_truthfulqa_implicit_reward_separates_heldout(tmp_path, method, steps, beta):
    train, held = R.truthfulqa_binary(n_train=1600, n_eval=400, seed=0)
    model = R.tiny_model(train, tmp_path / "init")
    run_train(method, str(model), train, str(tmp_path / "out"), log=lambda *a: None, overrides=dict(
        COMMON, max_steps=steps, batch_size=16, learning_rate=2e-3, beta=beta))

    prompts, comps = [r.prompt for r in held], [r.completion for r in held]
    labels = [r.label for r in held]
    start = R.implicit_rewards(model, model, prompts, comps, beta, MAX_LENGTH)
    end = R.implicit_rewards(tmp_path / "out", model, prompts, comps, beta, MAX_LENGTH)
    auc0, auc1 = R.auc(start, labels), R.auc(end, labels)
    gap0, gap1 = R.reward_gap(start, labels), R.reward_gap(end, labels)
    msg = f"{method}: held-out AUC {auc0:.3f} -> {auc1:.3f}, reward gap {gap0:.3f} -> {gap1:.3f}"
    print(msg)
    assert auc0 == 0.5 and gap0 == 0.0, msg  # the policy starts as its own reference
    assert auc1 >= 0.6 and gap1 > 0, msg


LISTWISE = {
    # method: (score the method ranks by, extra options)
    "lipo": ("implicit", {}),
    "pro": ("mean", {}),
    "rrhf": ("mean", {}),
}


@pytest.mark.parametrize("method", sorted(LISTWISE))
def test_listwise_alpaca_eval_ranks_heldout_lists(tmp_path, method):
    score, extra = LISTWISE[method]
    train, held = R.alpaca_lists(min_spread=0.1, n_eval=60, seed=0)
    model = R.tiny_model(train, tmp_path / "init")
    run_train(method, str(model), train, str(tmp_path / "out"), log=lambda *a: None, overrides=dict(
        COMMON, max_steps=80, batch_size=4, learning_rate=2e-3, **extra))

    prompts, comps = R.flat_lists(held)
    labels = [list(r.scores) for r in held]
    sum0, mean0 = R.sequence_scores(model, prompts, comps, MAX_LENGTH)
    sum1, mean1 = R.sequence_scores(tmp_path / "out", prompts, comps, MAX_LENGTH)
    if score == "implicit":
        before, after = sum0 - sum0, sum1 - sum0  # beta * (log pi - log pi_ref); beta > 0 does not change the order
    else:
        before, after = mean0, mean1
    before, after = R.grouped(before, held), R.grouped(after, held)
    acc0, acc1 = R.ranking_accuracy(before, labels), R.ranking_accuracy(after, labels)
    tau0, tau1 = R.kendall_tau(before, labels), R.kendall_tau(after, labels)
    msg = (f"{method} ({score} score): held-out pairwise accuracy {acc0:.3f} -> {acc1:.3f}, "
           f"Kendall tau {tau0:.3f} -> {tau1:.3f}")
    print(msg)
    assert acc1 >= acc0 + 0.03 and acc1 >= 0.6 and tau1 > tau0, msg
