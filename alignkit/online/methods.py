"""The recipes that chain sampling, judging and a registered loss: rso, sdpo, iterative-dpo.

Each is a composite method: its config's `loss` field names the inner loss, whose own flags
(generated from its config) follow on the command line, e.g.
`alignkit train iterative-dpo --loss sppo --eta 1000` or `alignkit train sdpo --loss ipo --beta 0.5`.
"""
from __future__ import annotations

from ..method import Method
from .iterative import IterativeConfig, run_iterative
from .rso import RSORecipeConfig, run_rso
from .sdpo import SDPOConfig, run_sdpo

ONLINE_METHODS = [
    Method("rso", None, RSORecipeConfig, "pairwise", "Liu et al. 2024, arXiv 2309.06657", run=run_rso,
           inner_feedback=("pairwise",),
           description="statistical rejection sampling of pairs with a judge, then RSO's loss"),
    Method("sdpo", None, SDPOConfig, "pairwise", "Kim et al. 2024, arXiv 2403.19270", run=run_sdpo,
           inner_feedback=("pairwise",),
           description="stepwise DPO: data in stages, reference = previous stage's model"),
    Method("iterative-dpo", None, IterativeConfig, "online", "Xiong et al. 2024, arXiv 2312.11456",
           run=run_iterative, inner_feedback=("pairwise", "listwise"),
           description="rounds of sampling the current policy, judging, and a pairwise loss"),
]
