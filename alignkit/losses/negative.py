"""Losses that learn from negative examples: NPO (unlearning), D2O, CRINGE.

Papers: NPO (Zhang et al. 2024, arXiv 2404.05868), D2O (Duan et al. 2024, arXiv 2403.03419), CRINGE
(Adolphs et al. 2022, arXiv 2211.05826); each docstring gives its loss. Data layouts:
- npo:    DemoInput, one row per forget-set completion, with the reference (pre-unlearning model).
- d2o:    ListwiseInput with K+1 rows per prompt, prompt-major: row b*(K+1) + 0 is the negative y_l,
          rows b*(K+1) + 1..K are K self-samples y_i ~ pi_ref(.|x) drawn once from the initial model.
          `scores` (B, K+1) only fixes the layout; its values are not read.
- cringe: BinaryInput with logits and ids (needs_logits): thumbs-up rows get cross-entropy,
          thumbs-down rows the token-level contrastive loss. No reference.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import option
from .base import BinaryInput, DemoInput, ListwiseInput, LossOutput


# --------------------------------------------------------------------------------------------
# NPO
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NPOConfig:
    beta: float = option(0.1, gt=0)  # temperature; beta -> 0 recovers gradient ascent (times 2)


def npo(inp: DemoInput, cfg: NPOConfig) -> LossOutput:
    """NPO (Zhang et al. 2024, arXiv 2404.05868, the NPO loss):

      L = -(2/beta) * log sigma(-beta * Delta(y)) = (2/beta) * log(1 + (pi(y|x)/pi_ref(y|x))^beta)

    on forget-set completions y, Delta with summed token log-probs. The gradient is bounded as
    pi -> 0, unlike gradient ascent. The retain-set term of NPO+GD / NPO+KL is not part of this loss.
    """
    delta = inp.policy.sum() - inp.ref.sum()  # (B,)
    loss = (2.0 / cfg.beta) * F.softplus(cfg.beta * delta)  # (B,)
    return LossOutput(loss, {"rewards": (cfg.beta * delta).detach(), "logp": inp.policy.sum().detach()})


# --------------------------------------------------------------------------------------------
# D2O
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class D2OConfig:
    beta: float = option(0.1, gt=0)  # temperature on the mean log-ratio of the K self-samples
    alpha: float = option(0.1, ge=0)  # weight on the negative's log-ratio
    samples_per_prompt: int = option(4, ge=1, aliases=("num_samples",))  # K self-samples per prompt, drawn once from the initial model before training (paper: 11)
    max_new_tokens: int = option(64, ge=1, aliases=("sample_max_tokens",))  # longest self-sample in tokens
    temperature: float = option(1.0, ge=0, aliases=("sample_temperature",))  # sampling temperature of the self-samples


def d2o_shape_options(cfg: D2OConfig) -> dict:
    """The negative-feedback shape's self-samples for D2O: K per prompt from the initial model."""
    return {"num_samples": cfg.samples_per_prompt, "max_tokens": cfg.max_new_tokens, "temperature": cfg.temperature}


def d2o(inp: ListwiseInput, cfg: D2OConfig) -> LossOutput:
    """D2O (Duan et al. 2024, "Negating Negatives", arXiv 2403.03419, the D2O objective):

      L = -log sigma( (beta/K) * sum_{i=1..K} log(pi(y_i|x)/pi_r-(y_i|x)) - alpha * log(pi(y_l|x)/pi_r+(y_l|x)) )

    y_l is the negative (column 0 of each list), y_1..y_K are self-samples of the initial model
    (columns 1..K). Both references pi_r- and pi_r+ are the original model, as in the paper's
    experiments, so one `ref` serves both. Summed token log-probs.
    """
    delta = inp.grouped(inp.policy.sum() - inp.ref.sum())  # (B, K+1)
    d_neg = delta[:, 0]  # (B,)
    d_pos = delta[:, 1:].mean(dim=1)  # (B,) (1/K) sum_i Delta(y_i)
    logits = cfg.beta * d_pos - cfg.alpha * d_neg  # (B,)
    return LossOutput(-F.logsigmoid(logits), {
        "rewards/samples": (cfg.beta * d_pos).detach(),
        "rewards/negative": (cfg.alpha * d_neg).detach(),
        "rewards/margin": logits.detach(),
    })


# --------------------------------------------------------------------------------------------
# CRINGE
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CringeConfig:
    ct_weight: float = option(1.0, ge=0)  # alpha, weight of the contrastive loss on negative sequences (ParlAI ct_loss_weight)
    num_pos_predictions: int = option(1, ge=1)  # k: sample the positive token from the model's top-k (ParlAI default 1; paper's k unverified)
    sample_seed: int = 0  # seed of the top-k sampling (mixed with the batch's token ids, so each batch draws differently)


def _generator(cfg: CringeConfig, ids: torch.Tensor) -> torch.Generator:
    gen = torch.Generator(device=ids.device)
    gen.manual_seed((cfg.sample_seed * 1_000_003 + int(ids.sum())) % (2 ** 63))
    return gen


def cringe(inp: BinaryInput, cfg: CringeConfig) -> LossOutput:
    """CRINGE (Adolphs et al. 2022, arXiv 2211.05826, the CRINGE loss; code: ParlAI projects/cringe).

    Positive (thumbs-up) sequences: token cross-entropy -log pi(y_t | x, y_<t).
    Negative sequences, per token y_t: take the top-(k+1) logits with y_t masked out (when y_t is
    not among them, the (k+1)-th is dropped), sample a token s ~ softmax over the k that remain, and
      L_ct = -log( e^{z_s} / (e^{z_s} + e^{z_{y_t}}) ) = softplus(z_{y_t} - z_s).
    L = CE_pos + alpha * L_ct, summed per sequence; `weight` = completion-token counts, so the
    engine's sum(loss)/sum(weight) divides by the total number of target tokens, as ParlAI does.
    Sampling uses a torch.Generator seeded from cfg.sample_seed and the batch's token ids (reproducible).
    """
    logits, ids = inp.policy.logits, inp.policy.ids
    if logits is None or ids is None:
        raise ValueError("cringe needs policy logits and ids in its BinaryInput (needs_logits)")
    mask = inp.policy.mask  # (N, T)
    ids = ids.masked_fill(mask == 0, 0)  # padding may hold any id (e.g. -100); make it a valid index
    desirable = inp.desirable.bool()  # (N,)
    k = cfg.num_pos_predictions

    ce = -(inp.policy.tokens * mask).sum(-1)  # (N,) summed NLL

    with torch.no_grad():
        top_vals, top_idx = logits.topk(k + 1, dim=-1)  # (N, T, k+1)
        is_target = top_idx == ids.unsqueeze(-1)  # (N, T, k+1)
        drop = is_target.clone()
        drop[..., -1] |= ~is_target.any(-1)  # target not in the top-(k+1): drop the last candidate
        cand = top_vals.masked_fill(drop, float("-inf"))  # (N, T, k+1) exactly k finite entries
        probs = cand.float().softmax(-1).reshape(-1, k + 1)  # (N*T, k+1)
        pick = torch.multinomial(probs, 1, generator=_generator(cfg, ids)).view(ids.shape)  # (N, T)
        sampled = top_idx.gather(-1, pick.unsqueeze(-1)).squeeze(-1)  # (N, T) token ids
    z_s = logits.gather(-1, sampled.unsqueeze(-1)).squeeze(-1)  # (N, T)
    z_y = logits.gather(-1, ids.unsqueeze(-1)).squeeze(-1)  # (N, T)
    ct = (F.softplus(z_y - z_s) * mask).sum(-1)  # (N,)

    pos = desirable.to(ce.dtype)
    loss = pos * ce + (1 - pos) * cfg.ct_weight * ct  # (N,)
    n_tok = inp.policy.lengths()  # (N,)
    return LossOutput(loss, {
        "cringe/nll": (ce / n_tok.clamp(min=1)).detach(),
        "cringe/ct": (ct / n_tok.clamp(min=1)).detach(),
        "desirable_frac": pos.mean().detach(),
    }, weight=n_tok)
