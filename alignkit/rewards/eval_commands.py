"""`alignkit eval preferences`: registered into the eval command by alignkit/eval/commands.py
(EVAL_EXTENSIONS); the work is `alignkit.rewards.commands.eval_preferences`."""
from __future__ import annotations

from .commands import add_preferences_args


def register_eval(eval_subparsers):
    p = eval_subparsers.add_parser(
        "preferences", help="implicit-reward preference accuracy of a DPO-family policy on labelled pairs",
        description="Score each labelled pair with the policy's implicit reward beta * (log pi - log pi_ref) "
                    "(Rafailov et al. 2023) and report preference accuracy and calibration (reliability "
                    "table, expected calibration error); on thumbs-up/down data, the AUC of the implicit reward "
                    "(KTO, BCO). The reference and beta default to the ones in the "
                    "policy folder's config.yaml.")
    add_preferences_args(p)
