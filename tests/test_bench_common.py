"""benchmarks/common.py's side-by-side helpers: TRL's LoRA settings are alignkit's (the two sides train
the same adapters), the median step time, and the reward-model benchmark refusing --lora-r."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import common  # noqa: E402


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
    return LlamaForCausalLM(cfg)


def test_trl_lora_trains_the_same_adapters_as_alignkit():
    pytest.importorskip("peft")
    from peft import get_peft_model
    from alignkit.train.config import TrainConfig
    from alignkit.models.loading import LoraSettings, apply_lora
    c = TrainConfig(lora_r=8)
    ours = apply_lora(_tiny_llama(), LoraSettings(c.lora_r, c.lora_alpha, c.lora_dropout, tuple(c.lora_target_modules)))
    theirs = get_peft_model(_tiny_llama(), common.trl_peft_config(argparse.Namespace(lora_r=8)))

    def trainable(m):
        return {n: tuple(p.shape) for n, p in m.named_parameters() if p.requires_grad}
    assert trainable(ours) == trainable(theirs) and len(trainable(ours)) == 2 * 7 * 2  # A, B x 7 modules x 2 layers
    a, b = ours.peft_config["default"], theirs.peft_config["default"]
    assert (a.r, a.lora_alpha, a.lora_dropout) == (b.r, b.lora_alpha, b.lora_dropout) == (8, 16, 0.0)
    assert common.trl_peft_config(argparse.Namespace(lora_r=0)) is None  # full fine-tuning


def test_step_median_skips_nothing_but_the_first_clock_point():
    # clock points at the end of steps 1..4: steps 2, 3, 4 took 1, 5 and 2 s
    assert common.step_median([(10.0, 0.0), (11.0, 0.5), (16.0, 1.0), (18.0, 1.5)]) == 2.0


def test_reward_model_benchmark_refuses_lora():
    proc = subprocess.run([sys.executable, str(BENCH / "bench_rm.py"), "--lora-r", "8"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "--lora-r" in proc.stderr.splitlines()[-1]
