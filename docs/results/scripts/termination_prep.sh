#!/bin/bash
# docs/results/termination.md: the task's pairs and the Bradley-Terry reward model the termination study's
# iterative-dpo judges with (as bundled_task.md a2: 600 prompts x 4 base-model samples, first 500 pairs train).
set -e
# SFT: the bundled base model (`alignkit world base`; here the one cached under world/638a7659473f, built from the
# task's sources at commit e779f29: its cache key follows those files)
AK=.venv/bin/alignkit; SFT=${SFT:-$HOME/.cache/alignkit/world/638a7659473f/sft}
R=runs/term; mkdir -p $R
[ -f $R/export/pairwise.jsonl ] || $AK world export --source base --n-prompts 600 --samples-per-prompt 4 --temperature 0.3 --seed 0 --output $R/export
head -n 500 $R/export/pairwise.jsonl > $R/pairs_train.jsonl; tail -n +501 $R/export/pairwise.jsonl > $R/pairs_heldout.jsonl
[ -f $R/rm/summary.json ] || $AK train rm --model $SFT --epochs 2 --batch-size 16 --learning-rate 1e-4 --max-length 128 \
  --data $R/pairs_train.jsonl --eval-data $R/pairs_heldout.jsonl --output $R/rm --progress false
echo prep done
# a second, independent reward model for the stop rule's judge (--stop-judge): other prompts (seed 1), candidates
# from the corpus's behaviour mix instead of the base model, the same simulated labeller
[ -f $R/export2/pairwise.jsonl ] || $AK world export --source corpus --n-prompts 600 --samples-per-prompt 4 --seed 1 --output $R/export2
[ -f $R/rm2/summary.json ] || $AK train rm --model $SFT --epochs 2 --batch-size 16 --learning-rate 1e-4 --max-length 128 \
  --data $R/export2/pairwise.jsonl --eval-data $R/pairs_heldout.jsonl --output $R/rm2 --progress false
echo prep2 done
