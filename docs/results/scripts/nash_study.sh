#!/bin/bash
# docs/results/nash.md: methods trained on the intransitive annotator population's labels, from the bundled
# task's base model. Reduced budget, 1 seed, torch on 1 thread. Usage: bash docs/results/scripts/nash_study.sh STEP
set -e
AK=.venv/bin/alignkit; R=runs/nash; BASE=$R/base; P=$R/export/prompts_train.jsonl
export OMP_NUM_THREADS=1
COMMON="--num-threads 1 --progress false --seed 0 --max-length 128"
ROUND="--samples-per-prompt 4 --sample-temperature 1.0 --max-new-tokens 48 --epochs 2 --batch-size 16 --lr-scheduler cosine --warmup-ratio 0.1 --learning-rate 1e-4"
NASH="--reward population --max-new-tokens 48 --temperature 1.0 --eval-fraction 0 --lr-scheduler constant --batch-size 8 --prompts-per-step 8"
t() { local s=$(date +%s); "$@"; echo "$(( $(date +%s) - s ))" > $R/study/$NAME.wall; }
case $1 in
  base)   $AK world base --output $BASE ;;
  export) $AK world export --source base --population --n-prompts 600 --samples-per-prompt 4 --seed 0 --output $R/export ;;
  dpo)    NAME=dpo t $AK train dpo --model $BASE --data $R/export/pairwise.jsonl --output $R/study/dpo --beta 0.1 \
            --epochs 2 --batch-size 16 --lr-scheduler cosine --warmup-ratio 0.1 --learning-rate 1e-4 --eval-fraction 0 $COMMON ;;
  rm)     NAME=rm t $AK train rm --model $BASE --data $R/export/pairwise.jsonl --output $R/study/rm --epochs 2 \
            --batch-size 16 --learning-rate 1e-4 --eval-fraction 0.1 $COMMON ;;
  iterdpo) NAME=iterdpo t $AK train iterative-dpo --model $BASE --data $P --output $R/study/iterdpo --reward population \
            --iterations 3 --prompts-per-iteration 200 $ROUND $COMMON ;;
  # SPPO's win rates from a pairwise-only judge are compressed ~3x by the recipe (nash.md), so eta 300 ~ eta 100
  sppo)   NAME=sppo t $AK train iterative-dpo --loss sppo --reference previous --eta 300 --model $BASE --data $P \
            --output $R/study/sppo --reward population --iterations 3 --prompts-per-iteration 200 $ROUND $COMMON ;;
  dno)    NAME=dno t $AK train dno --model $BASE --data $P --output $R/study/dno --reward population \
            --iterations 3 --prompts-per-iteration 200 --min-gap 0.2 $ROUND $COMMON ;;
  # nash-md in stages of 25 iterations (constant lr, so the stages are one uninterrupted run); $2: stage 1..6,
  # $3: variant: plain | warm (from the offline DPO model, KL and mixture still to the base) | k4 (4 pairs per prompt)
  nashmd) V=${3:-plain}; O=$R/study/nashmd$([ $V != plain ] && echo _$V || true); N=$((25 * $2)); NAME=$(basename $O)_$N
          case $V in plain) X="";; warm) X="--model $R/study/dpo --ref $BASE";; k4) X="--num-samples 4";; esac
          t $AK train nash-md --model $BASE --data $P --output $O $NASH --iterations $N --save-every 25 \
            --learning-rate 1e-4 --beta 0.1 --mixture-coef 0.5 $X $([ $2 -gt 1 ] && echo --resume) $COMMON
          rm -rf ${O}_$N && mkdir -p ${O}_$N && find $O -maxdepth 1 -type f -exec cp {} ${O}_$N/ \; ;;
  # nash-md's 150 iterations in one go with another seed ($2: the prompt order and the samples)
  nashmd_seed) NAME=nashmd_seed$2 t $AK train nash-md --model $BASE --data $P --output $R/study/nashmd_seed$2 $NASH \
            --iterations 150 --learning-rate 1e-4 --beta 0.1 --mixture-coef 0.5 $COMMON --seed $2 ;;
  # accelerations of SPPO: warm start from offline DPO; 8 samples per prompt in 2 rounds of 150 (the same 2400 samples)
  sppo_warm) NAME=sppo_warm t $AK train iterative-dpo --loss sppo --reference previous --eta 300 --model $R/study/dpo \
            --data $P --output $R/study/sppo_warm --reward population --iterations 3 --prompts-per-iteration 200 $ROUND $COMMON ;;
  sppo_k8) NAME=sppo_k8 t $AK train iterative-dpo --loss sppo --reference previous --eta 300 --model $BASE --data $P \
            --output $R/study/sppo_k8 --reward population --iterations 2 --prompts-per-iteration 150 $ROUND \
            --samples-per-prompt 8 $COMMON ;;
esac
