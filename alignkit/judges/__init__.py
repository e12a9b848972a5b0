"""AI feedback: LLM judges behind the `Judge` interface (alignkit/rewards/judge.py).

- pairwise.PairwiseLLMJudge: RLAIF's preference judge (Lee et al. 2023, arXiv 2309.00267): label
  probabilities, chain of thought, both orders averaged.
- pointwise.PointwiseLLMJudge: an additive 0-5 rubric (Self-Rewarding LMs, Yuan et al. 2024,
  arXiv 2401.10020), a reward for RL and for ranking samples.
- templates: editable prompt files (helpful and harmless built in); exemplars: few-shot files.
- backends: a local Hugging Face model (hf.py) or any OpenAI-compatible server (client.py, with
  retries, a concurrency limit and an on-disk cache).
- label: `alignkit label`, AI-labelled preference data from prompts with several responses.
- constitution: Constitutional AI (Bai et al. 2022, arXiv 2212.08073): constitution files (a default is
  shipped), the supervised critique-and-revision stage and the AI-preference stage under principles
  (`alignkit constitution revise|prefs`); resumable: resumable output in chunks (label uses it too).

Importing this package registers the judge-spec kinds `llm-pair:`, `llm-score:` and `llm-cai:` (specs.py).
"""
from . import specs as _specs  # noqa: F401  (registers llm-pair and llm-score)
from .backends import Backend, backend_from_spec
from .pairwise import PairJudgment, PairwiseLLMJudge
from .parse import parse_score
from .pointwise import PointwiseLLMJudge, ScoreJudgment
from .specs import llm_judge
from .templates import Template, load_template

__all__ = ["Backend", "backend_from_spec", "PairJudgment", "PairwiseLLMJudge", "parse_score", "PointwiseLLMJudge",
           "ScoreJudgment", "llm_judge", "Template", "load_template"]
