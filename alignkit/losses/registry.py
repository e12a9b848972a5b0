"""Every offline loss as a Method (alignkit/method.py): adding a loss is one entry here.

alignkit/registry.py merges these with the recipes of the other subsystems into the one registry."""
from __future__ import annotations

from ..method import Method
from . import pairwise, sft
from . import binary, listwise, negative, token
from . import nash

LOSSES: dict = {
    m.name: m
    for m in [
        Method("sft", sft.sft, sft.SFTConfig, "demonstration", "Ouyang et al. 2022 (SFT stage of InstructGPT)",
                 reference=False, description="supervised fine-tuning, completion-only NLL"),
        Method("dpo", pairwise.dpo, pairwise.DPOConfig, "pairwise", "Rafailov et al. 2023, arXiv 2305.18290",
                 description="direct preference optimisation"),
        # --- pairwise family ---
        Method("cdpo", pairwise.cdpo, pairwise.CDPOConfig, "pairwise",
                 "Mitchell 2023, A note on DPO with noisy preferences (no arXiv id: ericmitchell.ai/cdpo.pdf)",
                 description="conservative DPO: label smoothing for an assumed flip rate eps"),
        Method("robust", pairwise.robust, pairwise.RobustDPOConfig, "pairwise",
                 "Chowdhury et al. 2024, arXiv 2403.00409", description="provably robust DPO (rDPO), de-biased for flip rate eps"),
        Method("ipo", pairwise.ipo, pairwise.IPOConfig, "pairwise", "Azar et al. 2023, arXiv 2310.12036",
                 description="identity preference optimisation: regress h onto 1/(2 tau)"),
        Method("slic-hf", pairwise.slic_hf, pairwise.SLiCConfig, "pairwise", "Zhao et al. 2023, arXiv 2305.10425",
                 reference=False, description="sequence likelihood calibration: hinge on log-probs + NLL of the chosen"),
        Method("dpop", pairwise.dpop, pairwise.DPOPConfig, "pairwise", "Pal et al. 2024 (Smaug), arXiv 2402.13228",
                 description="DPO-Positive: penalise the chosen likelihood falling below the reference"),
        Method("beta-dpo", pairwise.beta_dpo, pairwise.BetaDPOConfig, "pairwise", "Wu et al. 2024, arXiv 2407.08639",
                 stateful=True, description="DPO with a batch-level dynamic beta and gap-guided pair filtering"),
        Method("gpo", pairwise.gpo, pairwise.GPOConfig, "pairwise", "Tang et al. 2024, arXiv 2402.05749",
                 description="generalised preference optimisation: a convex f of beta*h"),
        Method("r-dpo", pairwise.r_dpo, pairwise.RDPOConfig, "pairwise", "Park et al. 2024, arXiv 2403.19159",
                 description="length-regularised DPO"),
        Method("simpo", pairwise.simpo, pairwise.SimPOConfig, "pairwise", "Meng et al. 2024, arXiv 2405.14734",
                 reference=False, description="reference-free: mean log-prob reward with a target margin"),
        Method("cpo", pairwise.cpo, pairwise.CPOConfig, "pairwise", "Xu et al. 2024, arXiv 2401.08417",
                 reference=False, description="contrastive preference optimisation: uniform-reference DPO + NLL"),
        Method("orpo", pairwise.orpo, pairwise.ORPOConfig, "pairwise", "Hong et al. 2024, arXiv 2403.07691",
                 reference=False, description="odds-ratio preference optimisation: NLL + log odds-ratio term"),
        Method("rpo", pairwise.rpo, pairwise.RPOConfig, "pairwise", "Pang et al. 2024, arXiv 2404.19733",
                 description="iterative reasoning preference optimisation: DPO + length-normalised NLL"),
        Method("rso-norm", pairwise.rso, pairwise.RSOConfig, "pairwise", "Liu et al. 2023, arXiv 2309.06657",
               description="RSO's sigmoid-norm / hinge-norm loss on given pairs (`train rso` adds the rejection sampling)"),
        # --- binary, listwise, negative-only, token-level ---
        Method("kto", binary.kto, binary.KTOConfig, "binary", "Ethayarajh et al. 2024, arXiv 2402.01306",
                 needs_mismatch=True, advice=binary.kto_advice,
                 description="Kahneman-Tversky optimisation from unpaired thumbs up/down"),
        Method("bco", binary.bco, binary.BCOConfig, "binary", "Jung et al. 2024, arXiv 2404.04656",
                 stateful=True, description="binary classifier optimisation with a running reward shift"),
        Method("dro", binary.dro, binary.DROConfig, "binary", "Richemond et al. 2024, arXiv 2405.19107",
                 needs_value=True, description="direct reward optimisation: squared residual with a value head V(x)"),
        Method("lipo", listwise.lipo, listwise.LiPOConfig, "listwise", "Liu et al. 2024, arXiv 2402.01878",
                 description="LiPO-lambda listwise learning-to-rank on log-ratios"),
        Method("rrhf", listwise.rrhf, listwise.RRHFConfig, "listwise", "Yuan et al. 2023, arXiv 2304.05302",
                 reference=False, description="rank responses: hinge on mean log-probs plus SFT on the best"),
        Method("pro", listwise.pro, listwise.PROConfig, "listwise", "Song et al. 2023, arXiv 2306.17492",
                 reference=False, description="preference ranking optimisation: Plackett-Luce with temperatures plus SFT"),
        Method("npo", negative.npo, negative.NPOConfig, "negative", "Zhang et al. 2024, arXiv 2404.05868",
                 description="negative preference optimisation (unlearning a forget set)"),
        Method("d2o", negative.d2o, negative.D2OConfig, "negative", "Duan et al. 2024, arXiv 2403.03419",
                 description="distributional dispreference optimisation: negatives vs self-samples",
                 shape_options=negative.d2o_shape_options),
        Method("cringe", negative.cringe, negative.CringeConfig, "binary", "Adolphs et al. 2022, arXiv 2211.05826",
                 reference=False, needs_logits=True, description="CE on positives, token contrastive loss on negatives"),
        Method("tdpo", token.tdpo, token.TDPOConfig, "pairwise", "Zeng et al. 2024, arXiv 2404.11999",
                 needs_logits=True, description="token-level DPO with sequential KL (TDPO1/TDPO2)"),
        # --- Nash learning ---
        Method("sppo", nash.sppo, nash.SPPOConfig, "listwise", "Wu et al. 2024, arXiv 2405.00675",
                 description="self-play preference optimisation: log-ratio to pi_t regressed on the win rate"),
    ]
}


def get_loss(name: str, feedback: tuple = ()) -> Method:
    """The loss `name`, optionally one of the given feedback shapes (a composite recipe's inner loss)."""
    from ..errors import ConfigError
    usable = sorted(k for k, m in LOSSES.items() if not feedback or m.feedback in feedback)
    if name not in usable:
        kind = f"{' or '.join(feedback)} loss" if feedback else "loss"
        raise ConfigError(f"--loss {name!r} is not a {kind}; one of: {', '.join(usable)}")
    return LOSSES[name]
