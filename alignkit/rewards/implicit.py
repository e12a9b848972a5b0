"""The implicit reward of a DPO-family policy, as a Judge ("implicit:POLICY_DIR[,REF_DIR][,beta=B]").

DPO's reparametrisation (Rafailov et al. 2023, arXiv 2305.18290, eq. 5) makes every policy trained
against a reference a reward model:
    r(x, y) = beta * (log pi(y|x) - log pi_ref(y|x))          (up to a per-prompt constant beta log Z(x))
Its per-token terms beta * (log pi(y_t|x, y<t) - log pi_ref(y_t|x, y<t)) are the token-level rewards of
"From r to Q*" (Rafailov et al. 2024, arXiv 2404.12358, sec. 4): `token_rewards`.

The reference and beta default to what the policy was trained with: `alignkit train` writes them into
the policy folder's config.yaml (`ref`, or the starting `model` when no --ref was given; `beta`).
"""
from __future__ import annotations


import torch

from ..data.tokenize import Encoder, trained_max_length
from ..errors import ConfigError
from ..models.loading import load_causal_lm, load_tokenizer
from ..train.forward import collate, sequence_logps
from ..train.record import read_run_config
from .judge import Judge
from .scoring import encode_for_scoring, length_batches


def training_config(policy_dir: str) -> dict:
    """The policy's run config (its config.yaml, flat keys; an older nested one flattened), {} if none."""
    return read_run_config(policy_dir)


def default_reference(policy_dir: str) -> str:
    """The model the policy was trained against, from its config.yaml."""
    cfg = training_config(policy_dir)
    ref = cfg.get("ref") or cfg.get("model")
    if not ref:
        raise ConfigError(f"{policy_dir}: no reference model given and no config.yaml naming one; "
                          "pass the reference folder (implicit:POLICY_DIR,REF_DIR or --ref DIR)")
    return str(ref)


def default_beta(policy_dir: str, fallback: float = 0.1) -> float:
    beta = training_config(policy_dir).get("beta")
    return float(beta) if isinstance(beta, (int, float)) else fallback


class ImplicitRewardJudge(Judge):
    """beta * (log pi(y|x) - log pi_ref(y|x)) with summed completion log-probs (EOS included)."""

    def __init__(self, policy_dir: str, ref_dir: str | None = None, beta: float | None = None,
                 batch_size: int = 8, max_length: int | None = None, device: str | None = None):
        self.ref_dir = ref_dir or default_reference(policy_dir)
        self.beta = default_beta(policy_dir) if beta is None else float(beta)
        self.policy = load_causal_lm(policy_dir).eval()
        self.ref = load_causal_lm(self.ref_dir).eval()
        if self.policy.config.vocab_size != self.ref.config.vocab_size:
            raise ConfigError(f"implicit reward: {policy_dir} and {self.ref_dir} have different vocabularies "
                              f"({self.policy.config.vocab_size} vs {self.ref.config.vocab_size} tokens)")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.policy.to(device)
        self.ref.to(device)
        self.device = device
        self.tok = load_tokenizer(policy_dir)
        self.encoder = Encoder(self.tok, *trained_max_length(max_length, training_config(policy_dir),
                                                             self.policy.config))
        self.batch_size = batch_size
        self.name = f"implicit:{policy_dir}"

    @torch.no_grad()
    def _token_logratios(self, prompts: list, responses: list) -> list:
        """Per response: (T_i,) tensor of log pi(y_t|.) - log pi_ref(y_t|.) over its completion tokens."""
        seqs = encode_for_scoring(self.encoder, prompts, responses)
        out = [torch.zeros(0)] * len(seqs)
        for idx in length_batches(seqs, self.batch_size):
            sb = collate([seqs[i] for i in idx], self.tok.pad_token_id).to(self.device)
            lp, _ = sequence_logps(self.policy, sb)
            lr, _ = sequence_logps(self.ref, sb)
            diff = (lp.tokens - lr.tokens).float().cpu()  # (n, Tc), 0 on padding
            mask = sb.comp_mask.bool().cpu()  # (n, Tc), right-aligned completions
            for row, i in enumerate(idx):
                out[i] = diff[row][mask[row]]
        return out

    def score(self, prompts: list, responses: list) -> list:
        return [self.beta * t.sum().item() for t in self._token_logratios(prompts, responses)]

    def token_rewards(self, prompts: list, responses: list) -> list:
        """Per response, a list of beta * (log pi - log pi_ref) per completion token (EOS last)."""
        return [(self.beta * t).tolist() for t in self._token_logratios(prompts, responses)]
