"""What an online run's log means, and the sample completions it keeps.

`log_notes(method)` is the text after the options in `alignkit train NAME --help` for the RL methods:
what each logged metric is and why two of them surprise (a loss of ~0.000 at every step; a negative
KL). Each claim follows from the code it names:

- loss ~ 0 (GRPO, RLOO): on-policy (ppo_epochs 1, num_minibatches 1) the update's ratio
  pi_theta / pi_old is exactly 1 in value, so the clipped surrogate of a completion is -A_i
  (policy_losses.clipped_surrogate) and the logged loss is minus the mean advantage. GRPO's advantages
  are centred within each prompt's group (advantages.group_normalise: sum_i A_i = 0 per group) and so
  are RLOO's (advantages.rloo: sum_i [R_i - mean_{j != i} R_j] = 0): the mean is 0, the loss prints as
  0.000 (GRPO adds beta * the k3 KL, ~0 while the policy is near the reference; under --loss-type token
  the length weighting makes it small, not 0). The gradient is -sum_i A_i grad log pi(y_i | x) / N,
  which is not 0: watch reward, kl and grad_norm instead.
- kl can be negative: it is the k1 estimate (1/N) sum_i sum_t [log pi(y_t) - log pi_ref(y_t)] over the
  batch's own samples (rl/evaluate.rollout_stats; Schulman 2020, "Approximating KL divergence"). Its
  expectation is KL(pi || pi_ref) >= 0, but a single completion's log-ratio can be negative, and so
  can the mean of a few dozen while the true KL is small next to their spread; at --temperature != 1
  the samples are not from pi, so the estimate is biased as well. k3 (exp(-r) - 1 + r >= 0 per token,
  GRPO's loss term: kl_loss, and kl_k3 when --kl-estimator k3) is never negative.

`CompletionLog` appends sample completions (prompt, completion, reward) of every N-th rollout batch to
completions.jsonl in the run folder and prints one of them to the log.
"""
from __future__ import annotations

import json
from pathlib import Path

COMPLETIONS_FILE = "completions.jsonl"

_METRICS = (
    ("reward", "mean judge score of the batch's completions (true_reward: the evaluation judge, e.g. r*)"),
    ("kl", "k1 estimate of KL(pi || pi_ref): the batch mean of sum_t [log pi(y_t) - log pi_ref(y_t)] over the "
           "policy's own samples. Unbiased, but one completion's value can be negative, and so can the mean of a "
           "batch while the true KL is small next to its spread (or at --temperature other than 1: the samples "
           "are then not from pi). A negative kl early in a run is noise, not a bug; k3 (exp(-r) - 1 + r per "
           "token) is never negative."),
    ("length", "mean completion length in tokens; eos_rate: the share of completions that ended with EOS"),
    ("loss", "the policy loss of the iteration's optimizer steps (below); metrics.jsonl also has grad_norm, "
             "entropy, advantage_std, clipfrac and approx_kl"),
)
_ZERO_MEAN = ("why loss=0.000 at every step: on-policy (--ppo-epochs 1, --num-minibatches 1) the ratio pi/pi_old "
              "is exactly 1 at the update, so each completion's loss is -A_i and the logged loss is minus the mean "
              "advantage. {what} have zero mean within each prompt's group, so the loss prints ~0.000{extra}, while "
              "the gradient -mean_i A_i grad log pi(y_i|x) is not zero. Judge progress by reward, kl and grad_norm.")
_PER_METHOD = {
    "grpo": _ZERO_MEAN.format(what="GRPO's group-normalised advantages (r_i - mean) / (std + eps)",
                              extra=" (plus beta x the k3 KL, kl_loss, ~0 near the reference; with --loss-type "
                                    "token the length weighting makes it small but not 0)"),
    "rloo": _ZERO_MEAN.format(what="RLOO's leave-one-out advantages R_i - mean_{j!=i} R_j", extra=""),
    "reinforce": "loss = -mean_i (R_i - b), b the moving-average baseline: near 0 while rewards are stable.",
    "remax": "loss = -mean_i (R_i - r(greedy)): negative when the samples beat the greedy completion.",
    "ppo": "loss = the clipped policy loss plus vf_coef x the value loss (pg_loss, vf_loss); PPO whitens its "
           "advantages to mean 0 over the batch, so pg_loss starts near 0 and vf_loss carries most of the loss.",
}
_PER_METHOD["ppo-ptx"] = _PER_METHOD["ppo"]
_NASH_METRICS = (
    ("preference", "mean P(y > y') under the judge of the policy's samples against the geometric mixture's "
                   "(0.5: no better than the mixture); vs_ref (evaluation): against the reference's samples"),
    _METRICS[1],
    ("length", "mean length in tokens of the policy's completions (metrics.jsonl: the mixture's too)"),
    ("loss", "Nash-MD's surrogate beta * sum_t sg(log pi/pi_ref) log pi - (P - 1/2) log pi(y) (rl/nash_md.py): its "
             "gradient is the policy gradient, its value is not a quantity that goes to 0 (log pi(y) is large and "
             "negative, weighted by P - 1/2 of either sign); judge progress by preference, vs_ref and kl"),
)
_SAMPLES = ("sample completions: every --log-completions-every N iterations (and the first), the batch's "
            "completions with their rewards (Nash-MD: the mixture's completion and P(y > y')) go to "
            "completions.jsonl in the output folder and one of them to the log.")


def log_notes(method: str, width: int = 100) -> str:
    """The `--help` epilog of an online method (pre-formatted lines): what its log's metrics mean."""
    import textwrap
    lines = ["metrics (a line per iteration, a row of metrics.jsonl each; an iteration = one rollout batch and "
             "its updates):"]
    lines = textwrap.wrap(lines[0], width)
    for name, text in (_NASH_METRICS if method == "nash-md" else _METRICS):
        lines += textwrap.wrap(text, width, initial_indent=f"  {name:<10} ", subsequent_indent=" " * 13)
    for para in ([_PER_METHOD[method]] if method in _PER_METHOD else []) + [_SAMPLES]:
        lines += [""] + textwrap.wrap(para, width)
    return "\n".join(lines)


def _short(text, n: int = 160) -> str:
    if not isinstance(text, str):  # a conversation: its last message
        text = text[-1]["content"] if text else ""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


class CompletionLog:
    """completions.jsonl in `folder`: rows {iteration, prompt, completion, reward, [score]} of the batches
    of iteration 1 and of every `every`-th iteration (every 0: none). A resumed run keeps the rows up to
    the iteration it resumes from (a killed run's later rows are dropped); a fresh run starts the file."""

    def __init__(self, folder, every: int, start_iteration: int = 0, log=print, enabled: bool = True):
        self.every, self.log = every, log
        self.path = Path(folder) / COMPLETIONS_FILE
        self.enabled = enabled and every > 0
        if not self.enabled:
            return
        kept = []
        if start_iteration and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a torn last line
                if row.get("iteration", 0) <= start_iteration:
                    kept.append(line)
        self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def due(self, iteration: int) -> bool:
        return self.enabled and (iteration == 1 or iteration % self.every == 0)

    def write(self, iteration: int, prompts: list, completions: list, rewards: list, extra: list | None = None,
              value_name: str = "reward"):
        """The batch's completions at `iteration` (when due), each with its reward (or `value_name`) and
        `extra[i]`'s fields; one of them printed to the log."""
        if not self.due(iteration):
            return
        with open(self.path, "a", encoding="utf-8") as f:
            for i, (p, c, r) in enumerate(zip(prompts, completions, rewards)):
                row = {"iteration": iteration, "prompt": p, "completion": c, value_name: float(r),
                       **(extra[i] if extra else {})}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        if prompts:
            self.log(f"sample @ iteration {iteration}: {_short(prompts[0], 100)!r} -> {_short(completions[0])!r} "
                     f"({value_name} {float(rewards[0]):.3f}; {len(prompts)} completions in {self.path.name})")


def write_round_completions(folder, round_: int, groups: list, scores: list, log=print, label: str = "") -> None:
    """An iterative method's round (online/rounds.py): every judged answer of the round, {round, prompt,
    completion, score}, to completions.jsonl in the round's folder, and one of them to the log."""
    path = Path(folder) / COMPLETIONS_FILE
    rows = [{"round": round_, "prompt": p, "completion": c, "score": None if s is None else float(s)}
            for (p, cands), ss in zip(groups, scores) for c, s in zip(cands, ss)]
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    if rows:
        r = rows[0]
        score = "" if r["score"] is None else f" (score {r['score']:.3f})"
        log(f"{label or f'round {round_}'}: sample {_short(r['prompt'], 100)!r} -> {_short(r['completion'])!r}{score}; "
            f"{len(rows)} answers in {path}")
