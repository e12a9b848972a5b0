#!/bin/bash
# docs/results/bundled_task.md g). Needs the bundled base model (alignkit world base), world export prompts
# (runs/bundled/e_export) and the reward model runs/s2/cli/rm_pairs (section a2). Args: $1 name, $2 reward spec, $3 iterations, $4 prompts per iteration, $5 seed (default 0), $6 extra args
AK=.venv/bin/alignkit; SFT=$HOME/.cache/alignkit/synthetic/6e9c114b4b4d/sft; O=runs/s3/iter/$1
mkdir -p runs/s3/iter
$AK train iterative-dpo --model $SFT --data runs/bundled/e_export/prompts_train.jsonl --output $O --reward "$2" \
  --iterations $3 --prompts-per-iteration $4 --samples-per-prompt 4 --temperature 0.7 --max-new-tokens 64 \
  --epochs 2 --batch-size 16 --lr-scheduler cosine --warmup-ratio 0.1 --max-length 128 --learning-rate 1e-4 \
  --progress false --resume --seed ${5:-0} $6 > $O.log 2>&1
$AK eval --model $O --baseline $SFT --n-prompts 400 --seed 0 --json > $O.eval.json 2>> $O.log
echo done $1
