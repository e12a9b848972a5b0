#!/bin/bash
# docs/results/termination.md. Needs termination_prep.sh (export + reward model). $1: what (term | dno | sr | sr_noeft | eval NAME), $2 seed.
set -e
AK=.venv/bin/alignkit; R=runs/term; SEED=${2:-0}
SFT=${SFT:-$HOME/.cache/alignkit/world/638a7659473f/sft}  # the base model termination_prep.sh exported from (its cache key follows the task's source files)
# 200 held-out prompts of the task's held-out split, shuffled (the file lists them family by family)
[ -f $R/heldout200.jsonl ] || .venv/bin/python -c "
import random; rows = open('$R/export/prompts_heldout.jsonl').read().splitlines(); random.Random(0).shuffle(rows)
open('$R/heldout200.jsonl', 'w').write('\n'.join(rows[:200]) + '\n')"
# EFT judgments: the export's noisy ratings (r* scale, [-4, 2.75]) mapped linearly to the rubric's 0-5
[ -f $R/eft.jsonl ] || .venv/bin/python -c "
import json; out = open('$R/eft.jsonl', 'w')
for line in open('$R/export/scored.jsonl').read().splitlines()[:800]:
    r = json.loads(line); r['score'] = min(5.0, max(0.0, (r['score'] + 4) / 6.75 * 5)); out.write(json.dumps(r) + '\n')"
COMMON="--model $SFT --data $R/export/prompts_train.jsonl --samples-per-prompt 4 --temperature 0.7 --max-new-tokens 64
  --epochs 2 --batch-size 16 --lr-scheduler cosine --warmup-ratio 0.1 --max-length 128 --learning-rate 1e-4
  --eval-fraction 0 --progress false --resume --seed $SEED --num-threads 1
  --eval-judge truth --heldout-data $R/heldout200.jsonl --heldout-prompts 200"
case $1 in
  term) # iterative DPO judged by the reward model, 8 rounds, no rule: every rule's stop round is read from the figures
    O=$R/iter_rm_s$SEED; $AK train iterative-dpo $COMMON --reward rm:$R/rm --iterations 8 --prompts-per-iteration 120 \
      --output $O > $O.log 2>&1 ;;
  live) # the same run with the rules live
    O=$R/iter_rm_live_s$SEED; $AK train iterative-dpo $COMMON --reward rm:$R/rm --iterations 8 --prompts-per-iteration 120 \
      --stop-when "winrate,kl:3,plateau:0.02:2" --output $O > $O.log 2>&1 ;;
  dno) O=$R/dno_rm_s$SEED; $AK train dno $COMMON --reward rm:$R/rm --iterations 3 --prompts-per-iteration 150 \
      --output $O > $O.log 2>&1 ;;
  sr) O=$R/sr_s$SEED; $AK train self-rewarding $COMMON --iterations 3 --prompts-per-iteration 100 \
      --judge-options "cot=0,batch_size=64,template=docs/results/scripts/judge_compact.txt" --eft-data $R/eft.jsonl --eft-steps 50 \
      --output $O > $O.log 2>&1 ;;
  sr_noeft) O=$R/sr_noeft_s$SEED; $AK train self-rewarding $COMMON --iterations 3 --prompts-per-iteration 150 \
      --judge-options "cot=0,batch_size=64,template=docs/results/scripts/judge_compact.txt" --output $O > $O.log 2>&1 ;;
  random) # control for self-rewarding: the same rounds with a judge that knows nothing (a random score per answer)
    O=$R/random_s$SEED; $AK train iterative-dpo $COMMON --reward file:docs/results/scripts/random_judge.py:score \
      --reference previous --iterations 3 --prompts-per-iteration 150 --output $O > $O.log 2>&1 ;;
  eval) $AK eval --model $R/$3 --baseline $SFT --n-prompts 400 --seed 0 --json > $R/$3.eval.json ;;
esac
echo done $1 $SEED
