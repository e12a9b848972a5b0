#!/bin/bash
# docs/results/termination.md: the task's pairs and the Bradley-Terry reward model the termination study's
# iterative-dpo judges with (as bundled_task.md a2: 600 prompts x 4 base-model samples, first 500 pairs train).
set -e
AK=.venv/bin/alignkit; SFT=$(.venv/bin/python -c "from alignkit.synthetic.base import WorldConfig, base_dir; print(base_dir(WorldConfig()) / 'sft')")
R=runs/term; mkdir -p $R
$AK world base > /dev/null
[ -f $R/export/pairwise.jsonl ] || $AK world export --source base --n-prompts 600 --samples-per-prompt 4 --temperature 0.3 --seed 0 --output $R/export
head -n 500 $R/export/pairwise.jsonl > $R/pairs_train.jsonl; tail -n +501 $R/export/pairwise.jsonl > $R/pairs_heldout.jsonl
[ -f $R/rm/summary.json ] || $AK train rm --model $SFT --epochs 2 --batch-size 16 --learning-rate 1e-4 --max-length 128 \
  --data $R/pairs_train.jsonl --eval-data $R/pairs_heldout.jsonl --output $R/rm --progress false
echo prep done
