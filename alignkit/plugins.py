"""Plug-ins of the public interfaces, loaded by the entry points (the CLI and alignkit.api).

A plug-in registers what it adds through the generic registries (judge kinds, rule rewards, prompt
sources) and is imported here, statically; no generic package imports a plug-in. The bundled
synthetic task (alignkit/synthetic) adds its ground-truth judge `truth`, `rule:truth` and its prompts.
"""
from __future__ import annotations

from .synthetic import plugin as synthetic_task  # noqa: F401
