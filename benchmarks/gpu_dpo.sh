#!/usr/bin/env bash
# DPO, alignkit vs TRL, on a lent GPU machine (one NVIDIA H200 here): one short run, < 8 minutes.
#
#   1. here, on the CPU machine, once:   bash benchmarks/gpu_dpo.sh prepare
#      builds the benchmark model if needed and puts into runs/gpu/ (ignored by git, ~40 MB) what the
#      GPU machine cannot fetch: the model folder, the hh-rlhf sample, and wheels of the packages its
#      image lacks (trl, datasets and their small deps, and this machine's transformers, so both ends
#      run the same version).
#   2. on the device:  run(command="bash benchmarks/gpu_dpo.sh", carry=["runs/gpu"], timeout_s=540)
#      installs the wheels under /tmp/site, then alternates TRL and alignkit runs (fresh processes,
#      bf16 autocast on both, no gradient checkpointing, reference log-probs precomputed, batch 8,
#      max length 512) and writes $OUT/gpu_dpo.log, $OUT/gpu_dpo.json and $OUT/env.txt.
#
# Environment knobs: ROUNDS (3), STEPS (30), DTYPE (bf16).
set -uo pipefail
cd "$(dirname "$0")/.."
GPU=runs/gpu

if [ "${1:-}" = "prepare" ]; then
  set -e
  PY=.venv/bin/python
  $PY -c "import sys; sys.path.insert(0, 'benchmarks'); import common; print(common.build_model())"
  mkdir -p "$GPU/wheels"
  rm -rf "$GPU/model" && cp -r runs/bench/model "$GPU/model"
  cp ../shared/data/hh-rlhf/harmless-base-sample.jsonl "$GPU/hh.jsonl"
  # the image (python 3.12) has torch, transformers 5.17, accelerate, peft, pyarrow, pandas: not these
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$GPU/wheels" trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 transformers==5.24.0
  du -sh "$GPU"
  exit 0
fi

OUT=${OUT:-runs/gpu/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1
if ls "$GPU"/wheels/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$GPU"/wheels/*.whl >"$OUT/pip.txt" 2>&1 || { cat "$OUT/pip.txt"; exit 1; }
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export ALIGNKIT_BENCH_WORK="$PWD/$GPU" ALIGNKIT_BENCH_HH="$PWD/$GPU/hh.jsonl"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import sys, torch, transformers, trl, datasets; print(sys.version.split()[0], 'torch', torch.__version__, \
'cuda', torch.version.cuda, torch.cuda.get_device_name(0), '| transformers', transformers.__version__, '| trl', \
trl.__version__, '| datasets', datasets.__version__)"
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
timeout 480 python3 benchmarks/bench_dpo.py --rounds "${ROUNDS:-3}" --steps "${STEPS:-30}" --dtype "${DTYPE:-bf16}" \
  --json "$OUT/gpu_dpo.json" 2>&1 | tee "$OUT/gpu_dpo.log"
