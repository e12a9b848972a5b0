"""`MergeConfig`: one frozen dataclass; its trailing comments are `alignkit merge --help`."""
from __future__ import annotations

from dataclasses import dataclass

from ..config import option

METHODS = ("task_arithmetic", "ties", "dare_ties", "dare_linear", "linear")
DTYPE_CHOICES = ("auto", "fp32", "float32", "bf16", "bfloat16", "fp16", "float16")


@dataclass(frozen=True)
class MergeConfig:
    method: str = option("task_arithmetic", choices=METHODS)  # task_arithmetic | ties | dare_ties | dare_linear | linear
    base: str = ""  # model folder the deltas are taken from (optional for linear: then config/tokenizer source only)
    models: tuple[str, ...] = ()  # comma-separated folders to merge: full models and/or PEFT LoRA adapters
    weights: tuple[float, ...] = ()  # one weight per model, comma-separated; empty = 1 each (linear normalises)
    scale: float = option(1.0, gt=0)  # lambda: multiplies the merged delta (all methods but linear, where it stays 1)
    density: float = option(0.2, gt=0, le=1)  # ties, dare_ties: share of each delta tensor kept, largest |value| first; 1 = no trim
    drop_rate: float = option(0.9, ge=0, lt=1)  # dare_*: probability p of dropping each delta entry; survivors are scaled by 1/(1-p)
    seed: int = 0  # seeds DARE's masks (a tensor's mask depends on the seed, the model's position, its name)
    output: str = ""  # folder to write: config.json, tokenizer, model.safetensors, merge.json
    dtype: str = option("auto", choices=("auto", "fp32", "bf16", "fp16"))  # auto | fp32 | bf16 | fp16: written weights (auto = the base's); merging runs in fp32
    overwrite: bool = False  # replace a non-empty output folder instead of refusing
    max_shard_gb: float = option(5.0, gt=0)  # largest output .safetensors file (GB); bigger models get shards and an index
    sparsity_threshold: float = option(0.0, ge=0)  # merge.json's per-model sparsity counts |delta| <= this as zero

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method: {self.method!r} is not one of {', '.join(METHODS)}")
        if self.dtype not in DTYPE_CHOICES:
            raise ValueError(f"dtype: {self.dtype!r} is not one of auto, fp32, bf16, fp16")
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"density: {self.density} must be in (0, 1] (the share of entries kept)")
        if not 0.0 <= self.drop_rate < 1.0:
            raise ValueError(f"drop_rate: {self.drop_rate} must be in [0, 1) (survivors are divided by 1 - drop_rate)")
        if self.weights and len(self.weights) != len(self.models):
            raise ValueError(f"--weights: {len(self.weights)} weights for {len(self.models)} models; "
                             "give one weight per model, comma-separated, or none")
        if self.method == "linear" and self.scale != 1.0:
            raise ValueError("--scale: linear averages whole models, so --scale must be 1; "
                             "use task_arithmetic to scale a delta")
        if self.max_shard_gb <= 0:
            raise ValueError(f"max_shard_gb: {self.max_shard_gb} must be > 0")
        if self.sparsity_threshold < 0:
            raise ValueError(f"sparsity_threshold: {self.sparsity_threshold} must be >= 0")

    def model_weights(self) -> tuple:
        return tuple(float(w) for w in self.weights) if self.weights else (1.0,) * len(self.models)
