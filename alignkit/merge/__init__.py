"""Model merging: task arithmetic, TIES, DARE and linear averaging of full models and LoRA adapters.

`ops` holds the pure tensor operations, `sources` reads inputs tensor by tensor, `run.run_merge`
streams a merge into a Hugging Face folder, `sparsity` measures deltas (for PAFT), `commands` adds
`alignkit merge`. Names load on first use, so registering the command does not import torch.
"""
import importlib

_EXPORTS = {
    "METHODS": "config", "MergeConfig": "config",
    "run_merge": "run", "merge_tensor": "run", "dare_generator": "run",
    "task_arithmetic": "ops", "ties": "ops", "ties_combine": "ops", "trim": "ops", "elect_sign": "ops",
    "disjoint_mean": "ops", "dare": "ops", "linear": "ops",
    "l1_delta_penalty": "sparsity", "l1_delta_sparsity": "sparsity", "base_snapshot": "sparsity",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
