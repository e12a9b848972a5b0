"""The online RL methods: `alignkit train ppo|ppo-ptx|reinforce|rloo|remax|grpo`.

Each method is an advantage estimator + a policy loss + a config (alignkit/rl/types.py RLMethod);
all of them run on the one online loop (alignkit/rl/loop.py). An iteration is one rollout batch and
its updates (ppo_epochs x num_minibatches optimizer steps); `--iterations` (or `--max-steps`, which
counts iterations here) sets how many, else `--epochs` over the prompts. `--batch-size` is the
micro-batch in rows; gradients of a minibatch accumulate exactly over its micro-batches.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import check_fields, option
from ..method import Method
from ..train.run import Job
from . import advantages as A
from . import policy_losses as L
from . import ptx
from .logs import log_notes
from .nash_md import NashMDConfig, run_nash_md
from .types import RLMethod


@dataclass(frozen=True)
class RLConfig:
    reward: str = ""  # judge spec that scores completions (rule:positive, rm:DIR, truth, ...); required
    eval_reward: str = ""  # judge reported as true_reward at evaluation only (e.g. truth = r*); "" = none (truth on the bundled task)
    iterations: int = option(0, ge=0)  # rollout-and-update rounds; 0 = --max-steps if set, else --epochs over the prompts
    samples_per_prompt: int = option(1, ge=1, aliases=("num_samples",))  # completions sampled per prompt (k)
    prompts_per_step: int = option(8, ge=1)  # prompts per rollout batch (the batch is prompts_per_step x samples_per_prompt completions)
    ppo_epochs: int = option(1, ge=1)  # passes over each rollout batch
    num_minibatches: int = option(1, ge=1)  # optimizer steps per pass (the rollout batch is split into this many minibatches)
    temperature: float = option(1.0, gt=0)  # sampling temperature of rollouts and evaluation (log-probs are always at 1)
    top_p: float = option(1.0, gt=0, le=1)  # nucleus sampling mass
    max_new_tokens: int = option(64, ge=1)  # longest completion; a longer one is cut and counts as not ended
    generator: str = option("auto", choices=("auto", "hf", "vllm"))  # auto | hf | vllm: sampling backend (auto = vLLM when installed and a GPU is present)
    generation_batch_size: int = option(64, ge=1)  # prompts per generate call
    share_prompts: bool = True  # score and update each group's prompt once (packed rows, value model too) where the batch's shapes make that cheaper (train/packing.py layout_costs); off = a padded row per sample
    kl_coef: float = option(0.05, ge=0)  # beta: weight of the KL to the reference
    kl_estimator: str = option("k1", choices=("k1", "k2", "k3"))  # k1 | k2 | k3: per-token KL estimator (Schulman 2020)
    adaptive_kl: bool = False  # adapt beta toward kl_target (Ziegler et al. 2019) instead of a fixed beta
    kl_target: float = option(6.0, gt=0)  # target sequence KL (nats) of the adaptive controller
    kl_horizon: int = option(10000, ge=1)  # horizon of the adaptive controller (episodes)
    reference_free: bool = False  # load no reference model and use no KL term (kl_coef ignored)
    clip_range: float = option(0.2, gt=0)  # epsilon of the ratio clip
    whiten_advantages: bool = False  # normalise advantages to mean 0, std 1 over the batch's tokens
    length_penalty: float = option(0.0, ge=0)  # subtract this times the completion length (tokens) from the reward
    length_normalize: bool = False  # divide the judge's score by the completion length (reward per token)
    missing_eos_penalty: float = option(0.0, ge=0)  # subtract this from the reward of a completion that never emits EOS
    eval_samples: int = option(4, ge=1)  # completions per held-out prompt at evaluation
    max_prompts: int = option(0, ge=0)  # use only the first N prompts; 0 = all (bundled task without --data: 1000)

    def __post_init__(self):  # built in Python too, the declared ranges and choices hold
        check_fields(self)
    log_completions_every: int = option(10, ge=0)  # every N iterations (and the first) append the batch's completions and rewards to completions.jsonl in the output folder and print one to the log; 0 = never



@dataclass(frozen=True)
class PPOConfig(RLConfig):
    ppo_epochs: int = option(4, ge=1)  # passes over each rollout batch (TRL: 4)
    whiten_advantages: bool = True  # normalise advantages to mean 0, std 1 over the batch's tokens
    gamma: float = option(1.0, ge=0, le=1)  # GAE discount (InstructGPT: 1, no discount)
    lam: float = option(0.95, ge=0, le=1)  # GAE lambda
    vf_coef: float = option(0.1, ge=0)  # weight of the value loss
    clip_range_value: float = option(0.2, gt=0)  # epsilon of the value clip
    value_model: str = "policy"  # policy (a separate copy of the starting policy) | shared (a head on the policy's backbone) | DIR (e.g. the reward model)


@dataclass(frozen=True)
class PPOPtxConfig(PPOConfig):
    ptx_data: str = ""  # demonstration (SFT / pre-training) data mixed into every step; required
    ptx_coef: float = option(1.0, ge=0)  # gamma: weight of the token-mean NLL on ptx_data (InstructGPT: 27.8 at its reward scale)
    ptx_batch_size: int = option(8, ge=1)  # demonstrations per optimizer step (InstructGPT: 8x the RL episodes)


@dataclass(frozen=True)
class ReinforceConfig(RLConfig):
    baseline_decay: float = option(0.9, ge=0, le=1)  # moving-average baseline: b <- decay * b + (1 - decay) * mean reward


@dataclass(frozen=True)
class RLOOConfig(RLConfig):
    samples_per_prompt: int = option(4, ge=2, aliases=("num_samples",))  # completions sampled per prompt (k >= 2; paper: 2-4)


@dataclass(frozen=True)
class ReMaxConfig(RLConfig):
    pass


@dataclass(frozen=True)
class GRPOConfig(RLConfig):
    samples_per_prompt: int = option(8, ge=2, aliases=("num_samples",))  # group size G: completions per prompt (paper: 64, TRL: 8)
    kl_coef: float = option(0.04, ge=0)  # beta: weight of the per-token KL in the loss (paper: 0.04)
    kl_estimator: str = option("k3", choices=("k1", "k2", "k3"))  # k1 | k2 | k3: per-token KL estimator in the loss (paper: k3)
    std: str = option("unbiased", choices=("unbiased", "population", "none"))  # unbiased | population | none: group std of the advantage (none = Dr. GRPO)
    std_eps: float = option(1e-4, ge=0)  # added to the group std
    loss_type: str = option("sequence", choices=L.AGGREGATIONS)  # sequence (paper: 1/|o_i| per completion) | token (DAPO) | dr_grpo (sum / max_new_tokens)


PPO = RLMethod("ppo", A.ppo_advantages, L.ppo_loss, needs_value=True)
REINFORCE = RLMethod("reinforce", A.reinforce_advantages, L.sequence_pg_loss)
RLOO = RLMethod("rloo", A.rloo_advantages, L.sequence_pg_loss, min_samples=2)
REMAX = RLMethod("remax", A.remax_advantages, L.sequence_pg_loss, greedy_baseline=True)
GRPO = RLMethod("grpo", A.grpo_advantages, L.grpo_loss, min_samples=2, kl_in_loss=True)


PPO_PTX = RLMethod("ppo-ptx", A.ppo_advantages, L.ppo_loss, needs_value=True, auxiliary=ptx.PtxObjective)


def _runner(method: RLMethod):
    def run(job: Job) -> dict:
        from .trainer import train_rl
        return train_rl(method, job.cfg, job.method_cfg, job.model, job.data, job.output, job.log,
                        record=job.record())
    run.__name__ = f"run_{method.name.replace('-', '_')}"
    return run


RL_METHODS = [
    Method(m.name, None, cfg, "online", paper, theme="RL", reference=True, run=_runner(m), description=desc,
           notes=log_notes(m.name))
    for m, cfg, paper, desc in (
        (PPO, PPOConfig, "Ouyang et al. 2022, arXiv 2203.02155; Huang et al. 2024, arXiv 2403.17031",
         "RLHF with PPO: value head, per-token KL in the reward, GAE, clipped policy and value losses"),
        (PPO_PTX, PPOPtxConfig, "Ouyang et al. 2022, arXiv 2203.02155, eq. 2",
         "PPO plus an NLL term on demonstration data in the same steps"),
        (REINFORCE, ReinforceConfig, "Williams 1992; Ahmadian et al. 2024, arXiv 2402.14740",
         "REINFORCE with a moving-average baseline, sequence KL in the reward"),
        (RLOO, RLOOConfig, "Ahmadian et al. 2024, arXiv 2402.14740",
         "REINFORCE leave-one-out over k samples per prompt, sequence KL in the reward"),
        (REMAX, ReMaxConfig, "Li et al. 2024, arXiv 2310.10505",
         "REINFORCE with the greedy completion's reward as the baseline"),
        (GRPO, GRPOConfig, "Shao et al. 2024, arXiv 2402.03300",
         "group-normalised advantages over G samples, per-token KL (k3) in the loss"),
    )
] + [
    Method("nash-md", None, NashMDConfig, "online", "Munos et al. 2023, arXiv 2312.00886", theme="RL",
           reference=True, run=run_nash_md,
           description="Nash-MD: policy vs the geometric mixture with the reference under a preference model, "
                       "policy gradient + KL", notes=log_notes("nash-md")),
]
