"""Plug-ins of the public interfaces, loaded by the entry points (the CLI and alignkit.api).

A plug-in registers what it adds through the generic registries (judge kinds, rule rewards, prompt
sources) and is imported here, statically; no generic package imports a plug-in. The bundled
synthetic task (alignkit/synthetic) adds its ground-truth judge `truth`, `rule:truth` and its prompts;
the LLM judges (alignkit/judges) add the judge kinds `llm-pair:` and `llm-score:`.
"""
from __future__ import annotations

from .synthetic import plugin as synthetic_task  # noqa: F401
from .judges import specs as llm_judge_kinds  # noqa: F401  (llm-pair:BACKEND and llm-score:BACKEND judge specs)
