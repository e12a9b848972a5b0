"""The one registry of losses: name -> LossSpec. Adding a method is one line here."""
from __future__ import annotations

from .base import LossSpec
from . import pairwise, sft

LOSSES: dict = {
    spec.name: spec
    for spec in [
        LossSpec("sft", sft.sft, sft.SFTConfig, "demonstration", "Ouyang et al. 2022 (SFT stage of InstructGPT)",
                 reference=False, description="supervised fine-tuning, completion-only NLL"),
        LossSpec("dpo", pairwise.dpo, pairwise.DPOConfig, "pairwise", "Rafailov et al. 2023, arXiv 2305.18290",
                 description="direct preference optimisation"),
    ]
}


def get_loss(name: str) -> LossSpec:
    if name not in LOSSES:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(LOSSES))}")
    return LOSSES[name]
