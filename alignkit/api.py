"""The Python API: what `alignkit train` does, callable from Python.

    from alignkit.api import run_train
    summary = run_train("dpo", "models/sft", "pairs.jsonl", "out/dpo", overrides={"beta": 0.1})

`data` is a path (JSONL, JSON, Parquet, CSV, a `save_to_disk` folder) or a list of records
(alignkit.data.records); for online methods, a prompts file or a list of prompts, or None for the
bundled task's prompts. `overrides` are config fields (the `--FIELD` flags of `alignkit train
METHOD --help`); `config_file` a YAML file of the same fields (overrides win). Importing this module
loads the plug-ins (the bundled task's `truth` judge and prompts).
"""
from __future__ import annotations

from . import plugins  # noqa: F401
from .registry import METHODS, get_method, method_rows, resolve_job, run_train

__all__ = ["run_train", "resolve_job", "get_method", "method_rows", "METHODS"]
