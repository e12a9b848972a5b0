#!/bin/bash
# One held-out split of hh-rlhf (docs/results/hh_pairwise.md): SFT, then slic-hf (lambda 1), cpo and dpo from it.
# The seed picks the 10% held out. Needs the tiny model built as in that page (runs/s2/hh/tiny).
# Usage: bash docs/results/scripts/hh_split.sh SEED   (writes runs/s3/hh/sSEED)
set -e
S=$1; AK=.venv/bin/alignkit; H=../shared/data/hh-rlhf/harmless-base-sample.jsonl; O=runs/s3/hh/s$S
C="--on-bad-record skip --max-length 256 --batch-size 16 --eval-fraction 0.1 --epochs 2 --seed $S"
mkdir -p $O
[ -f $O/sft/summary.json ] || $AK train sft --model runs/s2/hh/tiny --data $H --output $O/sft $C --learning-rate 3e-3 > $O/sft.log 2>&1
[ -f $O/slic/summary.json ] || $AK train slic-hf --model $O/sft --data $H --output $O/slic $C --learning-rate 5e-4 --lam 1.0 > $O/slic.log 2>&1
[ -f $O/cpo/summary.json ] || $AK train cpo --model $O/sft --data $H --output $O/cpo $C --learning-rate 5e-4 > $O/cpo.log 2>&1
[ -f $O/dpo/summary.json ] || $AK train dpo --model $O/sft --data $H --output $O/dpo $C --learning-rate 5e-4 > $O/dpo.log 2>&1
echo done $S
