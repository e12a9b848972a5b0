#!/bin/bash
# docs/results/nash.md: methods trained on the intransitive annotator population's labels, from the bundled
# task's base model. Reduced budget, torch on 1 thread. Usage: [SEED=N] bash docs/results/scripts/nash_study.sh STEP
# SEED (default 0) sets --seed (data order, initial samples, prompt order) of dpo/iterdpo/sppo/sppo1000/dno; a seed N > 0
# writes $R/study/NAME_sN.
set -e
AK=.venv/bin/alignkit; R=runs/nash; BASE=$R/base; P=$R/export/prompts_train.jsonl
export OMP_NUM_THREADS=1
SEED=${SEED:-0}; SFX=$([ $SEED != 0 ] && echo _s$SEED || true)
COMMON="--num-threads 1 --progress false --seed $SEED --max-length 128"
ROUND="--samples-per-prompt 4 --temperature 1.0 --max-new-tokens 48 --epochs 2 --batch-size 16 --lr-scheduler cosine --warmup-ratio 0.1 --learning-rate 1e-4"
NASH="--reward population --max-new-tokens 48 --temperature 1.0 --eval-fraction 0 --lr-scheduler constant --batch-size 8 --prompts-per-step 8"
t() { local s=$(date +%s); "$@"; echo "$(( $(date +%s) - s ))" > $R/study/$NAME.wall; }
case $1 in
  base)   $AK world base --output $BASE ;;
  export) $AK world export --source base --population --n-prompts 600 --samples-per-prompt 4 --seed 0 --output $R/export ;;
  dpo)    NAME=dpo$SFX t $AK train dpo --model $BASE --data $R/export/pairwise.jsonl --output $R/study/dpo$SFX --beta 0.1 \
            --epochs 2 --batch-size 16 --lr-scheduler cosine --warmup-ratio 0.1 --learning-rate 1e-4 --eval-fraction 0 $COMMON ;;
  rm)     NAME=rm t $AK train rm --model $BASE --data $R/export/pairwise.jsonl --output $R/study/rm --epochs 2 \
            --batch-size 16 --learning-rate 1e-4 --eval-fraction 0.1 $COMMON ;;
  iterdpo) NAME=iterdpo$SFX t $AK train iterative-dpo --model $BASE --data $P --output $R/study/iterdpo$SFX --reward population \
            --iterations 3 --prompts-per-iteration 200 $ROUND $COMMON ;;
  # before the recipe's fix (nash.md) the pairwise judge's win rates were compressed ~3x and the runs used --eta 300,
  # which acted as eta 100; with the fix: eta 100 (sppo), the paper's eta 1000 (sppo1000)
  sppo)   NAME=sppo$SFX t $AK train iterative-dpo --loss sppo --reference previous --eta 100 --model $BASE --data $P \
            --output $R/study/sppo$SFX --reward population --iterations 3 --prompts-per-iteration 200 $ROUND $COMMON ;;
  sppo1000) NAME=sppo1000$SFX t $AK train iterative-dpo --loss sppo --reference previous --eta 1000 --model $BASE --data $P \
            --output $R/study/sppo1000$SFX --reward population --iterations 3 --prompts-per-iteration 200 $ROUND $COMMON ;;
  dno)    NAME=dno$SFX t $AK train dno --model $BASE --data $P --output $R/study/dno$SFX --reward population \
            --iterations 3 --prompts-per-iteration 200 --min-gap 0.2 $ROUND $COMMON ;;
  # nash-md in stages of 25 iterations (constant lr, so the stages are one uninterrupted run); $2: stage 1..6,
  # $3: variant: plain | warm (from the offline DPO model, KL and mixture still to the base) | k4 (4 pairs per prompt)
  nashmd) V=${3:-plain}; O=$R/study/nashmd$([ $V != plain ] && echo _$V || true); N=$((25 * $2)); NAME=$(basename $O)_$N
          case $V in plain) X="";; warm) X="--model $R/study/dpo --ref $BASE";; k4) X="--samples-per-prompt 4";; esac
          t $AK train nash-md --model $BASE --data $P --output $O $NASH --iterations $N --save-every 25 \
            --learning-rate 1e-4 --beta 0.1 --mixture-coef 0.5 $X $([ $2 -gt 1 ] && echo --resume) $COMMON
          rm -rf ${O}_$N && mkdir -p ${O}_$N && find $O -maxdepth 1 -type f -exec cp {} ${O}_$N/ \; ;;
  # nash-md's 150 iterations in one go with another seed ($2: the prompt order and the samples)
  nashmd_seed) NAME=nashmd_seed$2 t $AK train nash-md --model $BASE --data $P --output $R/study/nashmd_seed$2 $NASH \
            --iterations 150 --learning-rate 1e-4 --beta 0.1 --mixture-coef 0.5 $COMMON --seed $2 ;;
  # accelerations of SPPO: warm start from offline DPO; 8 samples per prompt in 2 rounds of 150 (the same 2400 samples)
  sppo_warm) NAME=sppo_warm t $AK train iterative-dpo --loss sppo --reference previous --eta 300 --model $R/study/dpo \
            --data $P --output $R/study/sppo_warm --reward population --iterations 3 --prompts-per-iteration 200 $ROUND $COMMON ;;
  # acceleration: replay, each round also trains on the previous 2 rounds' records (--reuse-rounds 2)
  sppo_replay) NAME=sppo_replay$SFX t $AK train iterative-dpo --loss sppo --reference previous --eta 100 --model $BASE \
            --data $P --output $R/study/sppo_replay$SFX --reward population --iterations 3 --prompts-per-iteration 200 \
            --reuse-rounds 2 $ROUND $COMMON ;;
  dno_replay) NAME=dno_replay$SFX t $AK train dno --model $BASE --data $P --output $R/study/dno_replay$SFX \
            --reward population --iterations 3 --prompts-per-iteration 200 --min-gap 0.2 --reuse-rounds 2 $ROUND $COMMON ;;
  # the same replay with the initial model as every round's reference (iterative DPO's default)
  iterdpo_replay) NAME=iterdpo_replay$SFX t $AK train iterative-dpo --model $BASE --data $P --output $R/study/iterdpo_replay$SFX \
            --reward population --iterations 3 --prompts-per-iteration 200 --reuse-rounds 2 $ROUND $COMMON ;;
  sppo_k8) NAME=sppo_k8 t $AK train iterative-dpo --loss sppo --reference previous --eta 300 --model $BASE --data $P \
            --output $R/study/sppo_k8 --reward population --iterations 2 --prompts-per-iteration 150 $ROUND \
            --samples-per-prompt 8 $COMMON ;;
esac
