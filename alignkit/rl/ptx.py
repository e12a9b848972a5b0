"""PPO-ptx (Ouyang et al. 2022, eq. 2): mix a language-modelling loss on demonstration data into the
same optimizer steps as the RL loss, to pay less "alignment tax".

    objective (minimised) = L_RL + ptx_coef * NLL_token_mean(demonstrations of the step)

Both terms share one engine step: the step's micro-batch list holds the RL micro-batches first and
then the demonstration micro-batches. The engine divides the summed loss by the summed weight, so a
demonstration row contributes loss = ptx_coef * W_RL / N_tok * NLL_sum(row) with weight 0, where W_RL
is the RL micro-batches' total weight in this step (already seen: they run first) and N_tok the
step's demonstration tokens. That makes the step's loss exactly L_RL + ptx_coef * token-mean NLL.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..losses.base import LossOutput
from ..train.forward import collate, sequence_logps


@dataclass
class PtxMicroBatch:
    seqs: list  # [(prompt_ids, completion_ids)]
    step_tokens: int  # completion tokens over all demonstration micro-batches of this step


def load_demonstrations(path: str, encoder, log=print) -> list:
    """-> [(prompt_ids, completion_ids)] from any demonstration file alignkit reads."""
    from ..data.readers import read_records
    from ..errors import ConfigError
    records, report = read_records(path, shape="demonstration")
    log(f"ptx data: {report.summary()}")
    seqs = []
    for r in records:
        e = encoder.encode(r.prompt, r.completion)
        if e is not None:
            seqs.append((e.prompt_ids, e.completion_ids))
    if not seqs:
        raise ConfigError(f"{path}: no demonstration left after tokenization")
    return seqs


def ptx_micro_batches(demos: list, step_index: int, per_step: int, micro_size: int, seed: int) -> list:
    """The step's demonstrations (a seeded pass over the data, a pure function of step_index) in
    micro-batches of micro_size."""
    from ..train.steps import micro_batch_indices
    idx = micro_batch_indices(step_index, len(demos), per_step, 1, 0, seed)
    seqs = [demos[i] for i in idx]
    tokens = sum(len(c) for _, c in seqs)
    return [PtxMicroBatch(seqs[i: i + micro_size], tokens) for i in range(0, len(seqs), micro_size)]


def ptx_loss(model, mb: PtxMicroBatch, pad_id: int, coef: float, rl_weight: float) -> LossOutput:
    device = next(model.parameters()).device
    lp, _ = sequence_logps(model, collate(mb.seqs, pad_id).to(device))
    nll = -lp.sum()  # (N,)
    scale = coef * rl_weight / max(mb.step_tokens, 1)
    return LossOutput(nll * scale, {"ptx_nll": (nll / lp.lengths().clamp(min=1)).detach()},
                      weight=torch.zeros_like(nll))


class PtxObjective:
    """PPO-ptx's demonstration term as an auxiliary objective of the online loop (RLMethod.auxiliary):
    each optimizer step's micro-batch list gets the step's demonstration micro-batches after the RL
    ones, and `loss` computes their share of the step's loss."""

    def __init__(self, mcfg, encoder, log=print):
        from ..errors import ConfigError
        if not mcfg.ptx_data:
            raise ConfigError("ppo-ptx needs --ptx-data FILE (demonstrations mixed into each step)")
        self.mcfg = mcfg
        self.demos = load_demonstrations(mcfg.ptx_data, encoder, log)

    def micro_batches(self, step_index: int, micro_size: int, seed: int) -> list:
        return ptx_micro_batches(self.demos, step_index, self.mcfg.ptx_batch_size, micro_size, seed)

    @staticmethod
    def owns(mb) -> bool:
        return isinstance(mb, PtxMicroBatch)

    def loss(self, model, mb: PtxMicroBatch, pad_id: int, rl_weight: float) -> LossOutput:
        return ptx_loss(model, mb, pad_id, self.mcfg.ptx_coef, rl_weight)
