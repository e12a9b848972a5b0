"""The one registry of losses: name -> LossSpec. Adding a method is one line here."""
from __future__ import annotations

from .base import LossSpec
from . import pairwise, sft
from . import binary, listwise, negative, token  # issue 7
from . import nash

LOSSES: dict = {
    spec.name: spec
    for spec in [
        LossSpec("sft", sft.sft, sft.SFTConfig, "demonstration", "Ouyang et al. 2022 (SFT stage of InstructGPT)",
                 reference=False, description="supervised fine-tuning, completion-only NLL"),
        LossSpec("dpo", pairwise.dpo, pairwise.DPOConfig, "pairwise", "Rafailov et al. 2023, arXiv 2305.18290",
                 description="direct preference optimisation"),
        # --- pairwise family (issue 4) ---
        LossSpec("cdpo", pairwise.cdpo, pairwise.CDPOConfig, "pairwise",
                 "Mitchell 2023, A note on DPO with noisy preferences (no arXiv id: ericmitchell.ai/cdpo.pdf)",
                 description="conservative DPO: label smoothing for an assumed flip rate eps"),
        LossSpec("robust", pairwise.robust, pairwise.RobustDPOConfig, "pairwise",
                 "Chowdhury et al. 2024, arXiv 2403.00409", description="provably robust DPO (rDPO), de-biased for flip rate eps"),
        LossSpec("ipo", pairwise.ipo, pairwise.IPOConfig, "pairwise", "Azar et al. 2023, arXiv 2310.12036",
                 description="identity preference optimisation: regress h onto 1/(2 tau)"),
        LossSpec("slic-hf", pairwise.slic_hf, pairwise.SLiCConfig, "pairwise", "Zhao et al. 2023, arXiv 2305.10425",
                 reference=False, description="sequence likelihood calibration: hinge on log-probs + NLL of the chosen"),
        LossSpec("dpop", pairwise.dpop, pairwise.DPOPConfig, "pairwise", "Pal et al. 2024 (Smaug), arXiv 2402.13228",
                 description="DPO-Positive: penalise the chosen likelihood falling below the reference"),
        LossSpec("beta-dpo", pairwise.beta_dpo, pairwise.BetaDPOConfig, "pairwise", "Wu et al. 2024, arXiv 2407.08639",
                 stateful=True, description="DPO with a batch-level dynamic beta and gap-guided pair filtering"),
        LossSpec("gpo", pairwise.gpo, pairwise.GPOConfig, "pairwise", "Tang et al. 2024, arXiv 2402.05749",
                 description="generalised preference optimisation: a convex f of beta*h"),
        LossSpec("r-dpo", pairwise.r_dpo, pairwise.RDPOConfig, "pairwise", "Park et al. 2024, arXiv 2403.19159",
                 description="length-regularised DPO"),
        LossSpec("simpo", pairwise.simpo, pairwise.SimPOConfig, "pairwise", "Meng et al. 2024, arXiv 2405.14734",
                 reference=False, description="reference-free: mean log-prob reward with a target margin"),
        LossSpec("cpo", pairwise.cpo, pairwise.CPOConfig, "pairwise", "Xu et al. 2024, arXiv 2401.08417",
                 reference=False, description="contrastive preference optimisation: uniform-reference DPO + NLL"),
        LossSpec("orpo", pairwise.orpo, pairwise.ORPOConfig, "pairwise", "Hong et al. 2024, arXiv 2403.07691",
                 reference=False, description="odds-ratio preference optimisation: NLL + log odds-ratio term"),
        LossSpec("rpo", pairwise.rpo, pairwise.RPOConfig, "pairwise", "Pang et al. 2024, arXiv 2404.19733",
                 description="iterative reasoning preference optimisation: DPO + length-normalised NLL"),
        LossSpec("rso", pairwise.rso, pairwise.RSOConfig, "pairwise", "Liu et al. 2023, arXiv 2309.06657",
                 description="RSO's sigmoid-norm / hinge-norm losses (the rejection sampling is separate)"),
        # --- binary, listwise, negative-only, token-level (issue 7) ---
        LossSpec("kto", binary.kto, binary.KTOConfig, "binary", "Ethayarajh et al. 2024, arXiv 2402.01306",
                 needs_mismatch=True, advice=binary.kto_advice,
                 description="Kahneman-Tversky optimisation from unpaired thumbs up/down"),
        LossSpec("bco", binary.bco, binary.BCOConfig, "binary", "Jung et al. 2024, arXiv 2404.04656",
                 stateful=True, description="binary classifier optimisation with a running reward shift"),
        LossSpec("dro", binary.dro, binary.DROConfig, "binary", "Richemond et al. 2024, arXiv 2405.19107",
                 needs_value=True, description="direct reward optimisation: squared residual with a value head V(x)"),
        LossSpec("lipo", listwise.lipo, listwise.LiPOConfig, "listwise", "Liu et al. 2024, arXiv 2402.01878",
                 description="LiPO-lambda listwise learning-to-rank on log-ratios"),
        LossSpec("rrhf", listwise.rrhf, listwise.RRHFConfig, "listwise", "Yuan et al. 2023, arXiv 2304.05302",
                 reference=False, description="rank responses: hinge on mean log-probs plus SFT on the best"),
        LossSpec("pro", listwise.pro, listwise.PROConfig, "listwise", "Song et al. 2023, arXiv 2306.17492",
                 reference=False, description="preference ranking optimisation: Plackett-Luce with temperatures plus SFT"),
        LossSpec("npo", negative.npo, negative.NPOConfig, "negative", "Zhang et al. 2024, arXiv 2404.05868",
                 description="negative preference optimisation (unlearning a forget set)"),
        LossSpec("d2o", negative.d2o, negative.D2OConfig, "negative", "Duan et al. 2024, arXiv 2403.03419",
                 description="distributional dispreference optimisation: negatives vs self-samples"),
        LossSpec("cringe", negative.cringe, negative.CringeConfig, "binary", "Adolphs et al. 2022, arXiv 2211.05826",
                 reference=False, needs_logits=True, description="CE on positives, token contrastive loss on negatives"),
        LossSpec("tdpo", token.tdpo, token.TDPOConfig, "pairwise", "Zeng et al. 2024, arXiv 2404.11999",
                 needs_logits=True, description="token-level DPO with sequential KL (TDPO1/TDPO2)"),
        # --- Nash learning ---
        LossSpec("sppo", nash.sppo, nash.SPPOConfig, "listwise", "Wu et al. 2024, arXiv 2405.00675",
                 description="self-play preference optimisation: log-ratio to pi_t regressed on the win rate"),
    ]
}


def get_loss(name: str) -> LossSpec:
    if name not in LOSSES:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(LOSSES))}")
    return LOSSES[name]
