"""What a method is: one declaration type for every entry of `alignkit methods`.

A method is a name, its place in the survey's taxonomy (theme, feedback shape, paper), what it needs
(a reference model, full logits, mismatched pairs, a value head, a running state), its own small
config class, and how it runs:
- `loss`: a pure loss function over per-token log-probs (alignkit/losses/base.py). The offline loop
  runs it; nothing in the loop knows the method's name.
- `run`: a data flow of its own (a recipe: reward models, RL, iterative or sampled preference
  optimisation), called with a `Job` (alignkit/train/run.py). A composite recipe trains an inner loss
  named by its config's `loss` field; `inner_feedback` lists the feedback shapes that loss may have.

The one registry of Method entries is alignkit/registry.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

THEMES = ("reward model", "feedback", "RL", "optimization")


@dataclass(frozen=True)
class Method:
    name: str
    loss: Optional[Callable]  # fn(inp, cfg[, state]) -> LossOutput; None for a recipe
    config: type  # the method's own frozen config dataclass (its fields are `alignkit train NAME` flags)
    feedback: str  # pairwise | binary | listwise | demonstration | scored | negative | online
    paper: str
    theme: str = "optimization"  # one of THEMES
    reference: bool = True  # needs a reference model (log-probs cached once, or run live)
    needs_logits: bool = False  # full-vocabulary logits (TDPO, CRINGE): the reference runs live
    needs_mismatch: bool = False  # KTO's mismatched (prompt, completion) pairs
    needs_value: bool = False  # a scalar value head V(x) trained with the policy (DRO)
    stateful: bool = False  # keeps running statistics across steps; then fn takes a `state: dict` the engine checkpoints
    description: str = ""
    notes: str = ""  # how to read the method's log (metrics, surprises): shown after the options by `alignkit train NAME --help`
    # advice(records, cfg) -> one-line notes about this data under this config, printed at the start
    advice: Optional[Callable] = None
    # shape_options(cfg) -> keyword options of the feedback shape (e.g. D2O's self-samples per prompt)
    shape_options: Optional[Callable] = None
    run: Optional[Callable] = None  # run(job) -> summary dict; alignkit/registry.py sets the offline flow for losses
    inner_feedback: tuple = ()  # a composite recipe: the feedback shapes its inner --loss may have

    def __post_init__(self):
        if self.theme not in THEMES:
            raise ValueError(f"{self.name}: theme must be one of {', '.join(THEMES)}, not {self.theme!r}")
        if (self.loss is None) == (self.run is None) and self.loss is None:
            raise ValueError(f"{self.name}: a method is a loss or a recipe (run)")
