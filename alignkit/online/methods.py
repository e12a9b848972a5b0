"""The recipes that chain sampling, judging and a registered loss: rso, sdpo, and the iterative methods
(iterative-dpo, dno, self-rewarding, iterative-cringe), which share one round machinery with resumable
rounds and --stop-when rules (alignkit/online/rounds.py).

Each is a composite method: its config's `loss` field names the inner loss, whose own flags
(generated from its config) follow on the command line, e.g.
`alignkit train iterative-dpo --loss sppo --eta 1000` or `alignkit train sdpo --loss ipo --beta 0.5`.
"""
from __future__ import annotations

from ..method import Method
from .dno import DNOConfig, run_dno
from .iterative import IterativeConfig, run_iterative
from .iterative_cringe import IterativeCringeConfig, run_iterative_cringe
from .rso import RSORecipeConfig, run_rso
from .sdpo import SDPOConfig, run_sdpo
from .self_rewarding import SelfRewardingConfig, run_self_rewarding

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
    Method("dno", None, DNOConfig, "online", "Rosset et al. 2024, arXiv 2404.03715 (Algorithm 2)",
           run=run_dno, inner_feedback=("pairwise",),
           description="Direct Nash Optimization in practice: win rates under a preference function, "
                       "large-margin pairs, DPO from the previous round"),
    Method("self-rewarding", None, SelfRewardingConfig, "online", "Yuan et al. 2024, arXiv 2401.10020",
           run=run_self_rewarding, inner_feedback=("pairwise",),
           description="the policy judges its own samples (0-5 LLM-as-a-judge rubric), DPO on best vs worst"),
    Method("iterative-cringe", None, IterativeCringeConfig, "online", "Xu et al. 2023, arXiv 2312.16682",
           run=run_iterative_cringe, inner_feedback=("binary",), reference=False,
           description="rounds of the policy's own judged answers: the best as positives, the bad as CRINGE negatives"),
]
