"""Does the RL layout choice (alignkit/train/packing.py layout_costs) pick the faster layout? For two
models and two batch shapes, forward + backward of 64 rollout rows in micro-batches of 16, packed vs
plain, best of 3 interleaved repeats, next to the cost model's packed/plain ratio. Not part of the tests.

    .venv/bin/python benchmarks/bench_layout_choice.py

Models: ../shared/models/stories260K and the 5.26M benchmark Llama (common.build_model). Shapes: 8 groups
x 8 samples with story-like prompts (4-11 tokens, completions 20-48) and hh-like prompts (15-147 tokens,
completions 40-64). The choice is right when measured and modelled ratios fall on the same side of 1.
"""
from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def main():
    import torch
    torch.set_num_threads(1)
    from alignkit.models.loading import load_causal_lm
    from alignkit.rl.forward import token_forward
    from alignkit.train.forward import collate
    from alignkit.train.packing import layout_costs
    r = random.Random(0)
    shapes = {"story-shape": [([1] + [5 + g] * (3 + g), [7 + i] * r.randint(20, 48)) for g in range(8) for i in range(8)],
              "hh-shape": [([1] + [5 + g] * pl, [7 + i] * r.randint(40, 64))
                           for g, pl in enumerate([45, 147, 17, 15, 16, 24, 94, 22]) for i in range(8)]}
    models = {"stories260K": common.SHARED / "models" / "stories260K", "hh-5.26M": common.build_model()}
    print(f"machine: {common.machine()}")
    for mname, path in models.items():
        m = load_causal_lm(str(path))
        m.train()
        for sname, seqs in shapes.items():
            best = {True: float("inf"), False: float("inf")}
            load0 = os.getloadavg()[0]
            for _ in range(3):
                for share in (True, False):
                    t = time.perf_counter()
                    for i in range(0, len(seqs), 16):
                        fw = token_forward(m, collate(seqs[i: i + 16], 0, share_prefix=share))
                        fw.logps.sum().backward()
                    best[share] = min(best[share], time.perf_counter() - t)
            packed, plain = layout_costs(seqs[:16], m.config)
            measured, modelled = best[True] / best[False], packed / plain
            print(f"{mname:12s} {sname:12s}: packed/plain measured {measured:.2f}, modelled {modelled:.2f} -> "
                  f"{'packed' if modelled < 1 else 'plain'} chosen, {'right' if (measured < 1) == (modelled < 1) else 'WRONG'}"
                  f" (load {(load0 + os.getloadavg()[0]) / 2:.1f})", flush=True)


if __name__ == "__main__":
    main()
