#!/bin/bash
# docs/results/termination.md, "self-rewarding from M1": the paper's M1 (Yuan et al. 2024, sec. 3.1: the base model
# fine-tuned on the seed IFT and EFT data, EFT at the start only), then self-rewarding rounds from M1 without EFT.
# Needs termination_prep.sh and termination.sh's eft.jsonl / heldout200.jsonl. $1: data | m1 | sr | sr_eft | eval, $2: seed.
set -e
AK=.venv/bin/alignkit; R=runs/term; O=$R/sr_m1; SEED=${2:-0}; mkdir -p $O
SFT=${SFT:-$HOME/.cache/alignkit/world/638a7659473f/sft}
export OMP_NUM_THREADS=1
# the self-judge: the compact rubric as plain text (chat=0), so its score digits never sit in an assistant turn
JUDGE="chat=0,cot=0,batch_size=64,template=docs/results/scripts/judge_compact.txt"
case $1 in
  data) # the EFT judgments twice, the first 1200 of the task's SFT demonstrations (IFT)
    .venv/bin/python docs/results/scripts/sr_m1_data.py --model $SFT --ift $R/export/sft.jsonl --eft $R/eft.jsonl \
      --judge-options "$JUDGE" --eft-repeat 2 --ift-limit 1200 --output $O/m1_data.jsonl ;;
  m1) $AK train sft --model $SFT --data $O/m1_data.jsonl --output $O/m1_s$SEED --epochs 2 --batch-size 16 \
      --learning-rate 1e-4 --lr-scheduler cosine --warmup-ratio 0.1 --max-length 128 --eval-fraction 0 --seed $SEED \
      --num-threads 1 --progress false > $O/m1_s$SEED.log 2>&1 ;;
  sr) $AK train self-rewarding --model $O/m1_s$SEED --data $R/export/prompts_train.jsonl --samples-per-prompt 4 \
      --temperature 0.7 --max-new-tokens 64 --epochs 2 --batch-size 16 --lr-scheduler cosine --warmup-ratio 0.1 \
      --max-length 128 --learning-rate 1e-4 --eval-fraction 0 --progress false --resume --seed $SEED --num-threads 1 \
      --eval-judge truth --heldout-data $R/heldout200.jsonl --heldout-prompts 200 --iterations 3 \
      --prompts-per-iteration 150 --judge-options "$JUDGE" --output $O/sr_s$SEED > $O/sr_s$SEED.log 2>&1 ;;
  sr_eft) # the same rounds, and every round also EFT (50 SFT steps on the judgments, plain-text queries) before its DPO
    $AK train self-rewarding --model $O/m1_s$SEED --data $R/export/prompts_train.jsonl --samples-per-prompt 4 \
      --sample-temperature 0.7 --max-new-tokens 64 --epochs 2 --batch-size 16 --lr-scheduler cosine --warmup-ratio 0.1 \
      --max-length 128 --learning-rate 1e-4 --eval-fraction 0 --progress false --resume --seed $SEED --num-threads 1 \
      --eval-judge truth --heldout-data $R/heldout200.jsonl --heldout-prompts 200 --iterations 3 \
      --prompts-per-iteration 150 --judge-options "$JUDGE" --eft-data $R/eft.jsonl --eft-rounds all --eft-steps 50 \
      --output $O/sr_eft_s$SEED > $O/sr_eft_s$SEED.log 2>&1 ;;
  eval) # $3: m1 | sr | sr_eft, against SFT on 400 held-out prompts
    $AK eval --model $O/$3_s$SEED --baseline $SFT --n-prompts 400 --seed 0 --json > $O/$3_s$SEED.eval.json ;;
esac
echo done $1 $SEED
