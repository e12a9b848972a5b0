#!/usr/bin/env bash
# SmolLM2-135M-Instruct as a policy (docs/results/smollm2.md, part 2), and the judge runs of part 1, in one
# sequential chain on one CPU thread. Every step is the CLI a user runs; wall times go to $OUT/times.tsv.
#   OUT=runs/smollm2_policy bash docs/results/scripts/smollm2_policy.sh [STEP ...]
# Steps (default: all, in this order): data dpo_lora judge dpo_full eval_dpo board gens kto_lora eval_kto cot
#   kto_tqa (KTO with LoRA on the TruthfulQA thumbs-up/down labels, its AUC and its leaderboard row)
set -u
export OMP_NUM_THREADS=1
A=.venv/bin/alignkit
PY=.venv/bin/python
M=${MODEL:-runs/smollm2-135m-instruct}
OUT=${OUT:-runs/smollm2_policy}
HH=$OUT/hh_chat.jsonl
DPO_STEPS=${DPO_STEPS:-8}
FULL_STEPS=${FULL_STEPS:-6}
KTO_STEPS=${KTO_STEPS:-8}
PAIRS=${PAIRS:-30}          # held-out pairs scored by eval preferences
JUDGE_N=${JUDGE_N:-30}      # judge pairs per labelled set
mkdir -p $OUT
COMMON="--data $HH --on-bad-record skip --eval-fraction 0.1 --seed 0 --eval-at none --max-length 256 \
  --batch-size 4 --num-threads 1 --progress 0 --log-every 1"
timed() {  # NAME CMD...: run, log, record the wall time
  local name=$1; shift
  local t0=$(date +%s)
  echo "== $name: $*" >> $OUT/commands.txt
  "$@" > $OUT/$name.log 2>&1
  local rc=$?
  echo -e "$name\t$(( $(date +%s) - t0 ))\t$rc" >> $OUT/times.tsv
}
prefs() {  # NAME MODEL_DIR
  timed eval_$1 $A eval preferences --model $2 --data $HH --on-bad-record skip --eval-fraction 0.1 --seed 0 \
    --max-pairs $PAIRS --json
}
steps=${*:-data dpo_lora judge dpo_full eval_dpo board gens kto_lora eval_kto cot}
for s in $steps; do case $s in
  data) timed data $PY docs/results/scripts/smollm2_data.py --out $HH ;;
  dpo_lora) timed dpo_lora $A train dpo --model $M $COMMON --lora-r 8 --learning-rate 5e-4 --beta 0.1 \
      --max-steps $DPO_STEPS --output $OUT/dpo_lora ;;
  dpo_full) timed dpo_full $A train dpo --model $M $COMMON --learning-rate 2e-5 --beta 0.1 \
      --max-steps $FULL_STEPS --output $OUT/dpo_full ;;
  kto_lora) timed kto_lora $A train kto --model $M $COMMON --lora-r 8 --learning-rate 5e-4 --beta 0.1 \
      --max-steps $KTO_STEPS --output $OUT/kto_lora ;;
  eval_dpo) prefs dpo_lora $OUT/dpo_lora; prefs dpo_full $OUT/dpo_full ;;
  eval_kto) prefs kto_lora $OUT/kto_lora
      timed board_kto $A leaderboard --models kto-lora=$OUT/kto_lora --tasks xstest,truthfulqa \
        --task-option xstest.n=20 --task-option truthfulqa.n_questions=20 --max-new-tokens 48 --threads 1 \
        --baseline $M --output $OUT/board_kto ;;
  board) timed board $A leaderboard --models base=$M,dpo-lora=$OUT/dpo_lora,dpo-full=$OUT/dpo_full \
      --tasks xstest,truthfulqa --task-option xstest.n=20 --task-option truthfulqa.n_questions=20 \
      --max-new-tokens 48 --threads 1 --output $OUT/board ;;
  gens) timed gens $PY docs/results/scripts/smollm2_generations.py --out $OUT/generations.json \
      --models base=$M,dpo-lora=$OUT/dpo_lora,dpo-full=$OUT/dpo_full$( [ -d $OUT/kto_lora ] && echo ,kto-lora=$OUT/kto_lora) ;;
  judge) timed judge $PY docs/results/scripts/smollm2_judge.py --model $M --n $JUDGE_N --parts direct \
      --out $OUT/judge ;;
  cot) timed judge_cot $PY docs/results/scripts/smollm2_judge.py --model $M --n $JUDGE_N --cot-n ${COT_N:-4} \
      --cot-tokens 64 --parts direct,cot --out $OUT/judge ;;
  kto_tqa) timed data_tqa $PY docs/results/scripts/smollm2_data.py \
        --truthfulqa ../shared/data/truthfulqa/finetune_truth.jsonl --out $OUT/tqa_chat.jsonl
      timed kto_tqa $A train kto --model $M --data $OUT/tqa_chat.jsonl --on-bad-record skip --eval-fraction 0.1 \
        --seed 0 --eval-at none --max-length 256 --batch-size 4 --num-threads 1 --progress 0 --log-every 1 \
        --lora-r 8 --learning-rate 5e-4 --beta 0.1 --max-steps $KTO_STEPS --output $OUT/kto_tqa
      timed eval_kto_tqa $A eval preferences --model $OUT/kto_tqa --data $OUT/tqa_chat.jsonl --on-bad-record skip \
        --eval-fraction 0.1 --seed 0 --max-pairs ${TQA_PAIRS:-100} --json
      timed board_kto_tqa $A leaderboard --models kto-tqa=$OUT/kto_tqa --tasks xstest,truthfulqa \
        --task-option xstest.n=20 --task-option truthfulqa.n_questions=20 --max-new-tokens 48 --threads 1 \
        --output $OUT/board_kto_tqa ;;
  *) echo "unknown step $s" >&2; exit 2 ;;
esac; done
