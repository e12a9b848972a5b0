"""The online RL methods: `alignkit train ppo|ppo-ptx|reinforce|rloo|remax|grpo`.

Each method is an advantage estimator + a policy loss + a config (alignkit/rl/types.py RLMethod);
all of them run on the one online loop (alignkit/rl/loop.py). An iteration is one rollout batch and
its updates (ppo_epochs x num_minibatches optimizer steps); `--iterations` (or `--max-steps`, which
counts iterations here) sets how many, else `--epochs` over the prompts. `--batch-size` is the
micro-batch in rows; gradients of a minibatch accumulate exactly over its micro-batches.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..method import Method
from ..train.run import Job
from . import advantages as A
from . import policy_losses as L
from . import ptx
from .nash_md import NashMDConfig, run_nash_md
from .types import RLMethod


@dataclass(frozen=True)
class RLConfig:
    reward: str = ""  # judge spec that scores completions (rule:positive, rm:DIR, truth, ...); required
    eval_reward: str = ""  # judge reported as true_reward at evaluation only (e.g. truth = r*); "" = none (truth on the bundled task)
    iterations: int = 0  # rollout-and-update rounds; 0 = --max-steps if set, else --epochs over the prompts
    num_samples: int = 1  # completions sampled per prompt (k)
    prompts_per_step: int = 8  # prompts per rollout batch (the batch is prompts_per_step x num_samples completions)
    ppo_epochs: int = 1  # passes over each rollout batch
    num_minibatches: int = 1  # optimizer steps per pass (the rollout batch is split into this many minibatches)
    temperature: float = 1.0  # sampling temperature of rollouts and evaluation (log-probs are always at 1)
    top_p: float = 1.0  # nucleus sampling mass
    max_new_tokens: int = 64  # longest completion; a longer one is cut and counts as not ended
    generator: str = "auto"  # auto | hf | vllm: sampling backend (auto = vLLM when installed and a GPU is present)
    generation_batch_size: int = 64  # prompts per generate call
    share_prompts: bool = True  # score and update each group's prompt once (packed rows, value model too) where the batch's shapes make that cheaper (train/packing.py layout_costs); off = a padded row per sample
    kl_coef: float = 0.05  # beta: weight of the KL to the reference
    kl_estimator: str = "k1"  # k1 | k2 | k3: per-token KL estimator (Schulman 2020)
    adaptive_kl: bool = False  # adapt beta toward kl_target (Ziegler et al. 2019) instead of a fixed beta
    kl_target: float = 6.0  # target sequence KL (nats) of the adaptive controller
    kl_horizon: int = 10000  # horizon of the adaptive controller (episodes)
    reference_free: bool = False  # load no reference model and use no KL term (kl_coef ignored)
    clip_range: float = 0.2  # epsilon of the ratio clip
    whiten_advantages: bool = False  # normalise advantages to mean 0, std 1 over the batch's tokens
    length_penalty: float = 0.0  # subtract this times the completion length (tokens) from the reward
    length_normalize: bool = False  # divide the judge's score by the completion length (reward per token)
    missing_eos_penalty: float = 0.0  # subtract this from the reward of a completion that never emits EOS
    eval_samples: int = 4  # completions per held-out prompt at evaluation
    max_prompts: int = 0  # use only the first N prompts; 0 = all (bundled task without --data: 1000)

    def __post_init__(self):  # a ValueError here becomes a one-line ConfigError
        for name, value, allowed in (("kl_estimator", self.kl_estimator, ("k1", "k2", "k3")),
                                     ("generator", self.generator, ("auto", "hf", "vllm"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if self.num_samples < 1 or self.max_new_tokens < 1 or self.eval_samples < 1:
            raise ValueError("num_samples, max_new_tokens and eval_samples must be >= 1")


@dataclass(frozen=True)
class PPOConfig(RLConfig):
    ppo_epochs: int = 4  # passes over each rollout batch (TRL: 4)
    whiten_advantages: bool = True  # normalise advantages to mean 0, std 1 over the batch's tokens
    gamma: float = 1.0  # GAE discount (InstructGPT: 1, no discount)
    lam: float = 0.95  # GAE lambda
    vf_coef: float = 0.1  # weight of the value loss
    clip_range_value: float = 0.2  # epsilon of the value clip
    value_model: str = "policy"  # policy (a separate copy of the starting policy) | shared (a head on the policy's backbone) | DIR (e.g. the reward model)


@dataclass(frozen=True)
class PPOPtxConfig(PPOConfig):
    ptx_data: str = ""  # demonstration (SFT / pre-training) data mixed into every step; required
    ptx_coef: float = 1.0  # gamma: weight of the token-mean NLL on ptx_data (InstructGPT: 27.8 at its reward scale)
    ptx_batch_size: int = 8  # demonstrations per optimizer step (InstructGPT: 8x the RL episodes)


@dataclass(frozen=True)
class ReinforceConfig(RLConfig):
    baseline_decay: float = 0.9  # moving-average baseline: b <- decay * b + (1 - decay) * mean reward


@dataclass(frozen=True)
class RLOOConfig(RLConfig):
    num_samples: int = 4  # completions sampled per prompt (k >= 2; paper: 2-4)


@dataclass(frozen=True)
class ReMaxConfig(RLConfig):
    pass


@dataclass(frozen=True)
class GRPOConfig(RLConfig):
    num_samples: int = 8  # group size G: completions per prompt (paper: 64, TRL: 8)
    kl_coef: float = 0.04  # beta: weight of the per-token KL in the loss (paper: 0.04)
    kl_estimator: str = "k3"  # k1 | k2 | k3: per-token KL estimator in the loss (paper: k3)
    std: str = "unbiased"  # unbiased | population | none: group std of the advantage (none = Dr. GRPO)
    std_eps: float = 1e-4  # added to the group std
    loss_type: str = "sequence"  # sequence (paper: 1/|o_i| per completion) | token (DAPO) | dr_grpo (sum / max_new_tokens)

    def __post_init__(self):
        super().__post_init__()
        if self.std not in ("unbiased", "population", "none"):
            raise ValueError(f"std must be unbiased, population or none, not {self.std!r}")
        if self.loss_type not in L.AGGREGATIONS:
            raise ValueError(f"loss_type must be one of {', '.join(L.AGGREGATIONS)}, not {self.loss_type!r}")


PPO = RLMethod("ppo", A.ppo_advantages, L.ppo_loss, needs_value=True)
REINFORCE = RLMethod("reinforce", A.reinforce_advantages, L.sequence_pg_loss)
RLOO = RLMethod("rloo", A.rloo_advantages, L.sequence_pg_loss, min_samples=2)
REMAX = RLMethod("remax", A.remax_advantages, L.sequence_pg_loss, greedy_baseline=True)
GRPO = RLMethod("grpo", A.grpo_advantages, L.grpo_loss, min_samples=2, kl_in_loss=True)


PPO_PTX = RLMethod("ppo-ptx", A.ppo_advantages, L.ppo_loss, needs_value=True, auxiliary=ptx.PtxObjective)


def _runner(method: RLMethod):
    def run(job: Job) -> dict:
        from .trainer import train_rl
        return train_rl(method, job.cfg, job.method_cfg, job.model, job.data, job.output, job.log)
    run.__name__ = f"run_{method.name.replace('-', '_')}"
    return run


RL_METHODS = [
    Method(m.name, None, cfg, "online", paper, theme="RL", reference=True, run=_runner(m), description=desc)
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
                       "policy gradient + KL"),
]
