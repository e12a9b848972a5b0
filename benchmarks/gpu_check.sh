#!/usr/bin/env bash
# GPU readiness, in one short run (< 8 minutes on one GPU): DPO and GRPO side by side with TRL on a
# 0.48B-parameter Llama built from a config (hidden 1152, 24 layers, 18 heads, MLP 4096, the hh
# tokenizer), alignkit's own decoder on the GPU, and the vLLM sampling backend when vLLM is present.
#
#   1. here, on the CPU machine, once:    bash benchmarks/gpu_check.sh prepare
#      puts into runs/gpu/ (ignored by git, ~40 MB) what a machine without network access lacks: the
#      hh-rlhf sample and wheels of trl, datasets and this machine's transformers.
#   2. on the device:   run(command="bash benchmarks/gpu_check.sh", carry=["runs/gpu"], timeout_s=540)
#      installs the wheels under /tmp/site (or, with network, from the index), builds the model,
#      then: DPO (bf16 autocast, batch 8, max length 512, TRL vs alignkit, alternating fresh
#      processes), GRPO (8 prompts x 8 samples x 64 tokens, TRL vs alignkit's decoder, plus alignkit
#      with --generator vllm when vLLM imports), and writes $OUT/gpu_check.json with every figure,
#      each stage's log and $OUT/env.txt. A stage that fails or runs past its time is recorded as
#      such and the next one runs.
#   bash benchmarks/gpu_check.sh --cpu-smoke
#      the same stages on a tiny model and a few steps, on the CPU (no vLLM): checks the script.
#
# Environment knobs: ROUNDS (1), DPO_STEPS (20), GRPO_STEPS (3), OUT (runs/gpu/out).
set -uo pipefail
cd "$(dirname "$0")/.."
GPU=runs/gpu

if [ "${1:-}" = "prepare" ]; then
  set -e
  PY=.venv/bin/python
  mkdir -p "$GPU/wheels"
  cp ../shared/data/hh-rlhf/harmless-base-sample.jsonl "$GPU/hh.jsonl"
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$GPU/wheels" trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 transformers==5.24.0
  du -sh "$GPU"
  exit 0
fi

SMOKE=0
[ "${1:-}" = "--cpu-smoke" ] && SMOKE=1
OUT=${OUT:-$GPU/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1
PY=python3
[ -x .venv/bin/python ] && [ "$SMOKE" = 1 ] && PY=.venv/bin/python
T0=$(date +%s)

# --- install what is missing -----------------------------------------------------------------
if ! $PY -c "import trl, datasets" >/dev/null 2>&1; then
  if ls "$GPU"/wheels/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$GPU"/wheels/*.whl >"$OUT/pip.txt" 2>&1 || { cat "$OUT/pip.txt"; exit 1; }
    export PYTHONPATH=/tmp/site
  else
    $PY -m pip install -q "trl==1.16.0" "datasets>=2.18" >"$OUT/pip.txt" 2>&1 || echo "pip install trl failed (see pip.txt)"
  fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -f "$GPU/hh.jsonl" ] && export ALIGNKIT_BENCH_HH="$PWD/$GPU/hh.jsonl"
export ALIGNKIT_BENCH_WORK="$PWD/$GPU/work"
if [ "$SMOKE" = 1 ]; then
  export ALIGNKIT_BENCH_WORK="$PWD/$GPU/work-smoke"
  export ALIGNKIT_BENCH_MODEL='{"hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128}'
  DPO_STEPS=${DPO_STEPS:-3}; GRPO_STEPS=${GRPO_STEPS:-2}; GRPO_ARGS="--prompts-per-step 2 --group 4 --max-new-tokens 8 --micro-batch 8"
  DTYPE=fp32
else
  export ALIGNKIT_BENCH_MODEL='{"hidden_size": 1152, "num_layers": 24, "num_heads": 18, "intermediate_size": 4096, "max_position_embeddings": 1024}'
  DPO_STEPS=${DPO_STEPS:-20}; GRPO_STEPS=${GRPO_STEPS:-3}; GRPO_ARGS=""
  DTYPE=bf16
fi
ROUNDS=${ROUNDS:-1}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no GPU"
  $PY -c "import sys, torch, transformers, trl, datasets; print(sys.version.split()[0], 'torch', torch.__version__, \
'cuda', torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu', '| transformers', \
transformers.__version__, '| trl', trl.__version__, '| datasets', datasets.__version__)"
  $PY -c "import vllm; print('vllm', vllm.__version__)" 2>/dev/null || echo "vllm: not importable"
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# --- the model, from a config ------------------------------------------------------------------
$PY -c "import sys; sys.path.insert(0, 'benchmarks'); import common; m = common.build_model(); \
print('model', m, round(common.matmul_params(m) / 1e6, 1), 'M matmul weights')" 2>&1 | tee "$OUT/model.txt"

stage() {  # stage NAME SECONDS command...: run with a time limit, record its exit status
  local name=$1 limit=$2; shift 2
  local t=$(date +%s)
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc after $(( $(date +%s) - t )) s" | tee -a "$OUT/stages.txt"
  tail -n 6 "$OUT/$name.log"
}
: >"$OUT/stages.txt"
# a stage's limit guards the GPU lease; the CPU smoke run only proves the stages run, on a machine that may be busy
LIMIT=150; [ "$SMOKE" = 1 ] && LIMIT=900
stage dpo $LIMIT $PY benchmarks/bench_dpo.py --rounds "$ROUNDS" --steps "$DPO_STEPS" --dtype "$DTYPE" --threads 0 \
  --json "$OUT/dpo.json"
stage grpo $LIMIT $PY benchmarks/bench_rl.py --rounds "$ROUNDS" --steps "$GRPO_STEPS" --threads 0 $GRPO_ARGS \
  --json "$OUT/grpo.json"
if [ "$SMOKE" = 0 ] && $PY -c "import vllm, torch; assert torch.cuda.is_available()" >/dev/null 2>&1; then
  stage grpo_vllm $LIMIT $PY benchmarks/bench_rl.py --rounds 1 --steps "$GRPO_STEPS" --threads 0 --only alignkit \
    --ablate generator=vllm --json "$OUT/grpo_vllm.json"
else
  echo "grpo_vllm: skipped (vLLM not importable or no GPU)" | tee -a "$OUT/stages.txt"
fi

# --- one file with every figure ------------------------------------------------------------------
$PY - "$OUT" "$(( $(date +%s) - T0 ))" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
res = {"seconds": int(sys.argv[2]), "env": (out / "env.txt").read_text().strip().splitlines(),
       "stages": (out / "stages.txt").read_text().strip().splitlines()}
for name in ("dpo", "grpo", "grpo_vllm"):
    f = out / f"{name}.json"
    res[name] = json.loads(f.read_text()) if f.is_file() else None
(out / "gpu_check.json").write_text(json.dumps(res, indent=1))
d, g = res["dpo"] or {}, res["grpo"] or {}
print(f"gpu_check: {res['seconds']} s; DPO alignkit/TRL {d.get('ratio', float('nan')):.2f}x pairs/s; "
      f"GRPO step {g.get('ratio_step', float('nan')):.2f}x faster, generation {g.get('ratio_gen_tokens', float('nan')):.2f}x; "
      f"vLLM {'ran' if res['grpo_vllm'] else 'not run'}")
PYEOF
