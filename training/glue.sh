#!/usr/bin/env bash
# One GPU-machine call: fine-tune every (task, method) pair from a pretraining checkpoint, several
# processes per GPU (the model is small and launch-bound), then bring back results, per-example dev
# predictions and the SST-2 models of EXPORT exported for the browser (fp16, split in parts < 16 MiB).
# Needs `carry: [".data/glue"]` (the five GLUE task folders) and the committed checkpoint's shard-00.pt.
#   bash training/glue.sh [init] [SST-2 epochs] [other tasks' epochs]
#   METHODS="full palbert" TASKS="SST-2 RTE" SKIP="SST-2-full" PER_GPU=3 SEED=42 bash training/glue.sh ...
# METHODS x TASKS, minus the "<task>-<method>" names in SKIP, minus gates on STS-B (regression: gates need
# class probabilities). BUDGET_S: no job starts, and no epoch starts that would end, later than this many
# seconds after the start (finetune.py --deadline), so the call ends in time with every finished epoch kept.
# INIT_DEMO=1 also runs training/init_demo.py (a Hugging Face ALBERT folder through --init, export, checks).
# FT_ARGS / DEMO_ARGS: extra arguments for every finetune.py / the init_demo.py run (a CPU smoke test:
# FT_ARGS="--device cpu --num_layers 2 --max_train 200" with a stand-in nvidia-smi on PATH).
# Every job's wall time is printed (JOB lines) and kept in jobs.tsv. $OUT gets at most 2 + 2 per export files.
set -uo pipefail
INIT=${1:-training/artifacts/pretrain}
E_BIG=${2:-4}
E_SMALL=${3:-10}
METHODS=${METHODS:-"full palbert pondernet pabee gates"}
TASKS=${TASKS:-"SST-2 CoLA MRPC RTE STS-B"}
SKIP=${SKIP:-}
PER_GPU=${PER_GPU:-3}
SEED=${SEED:-42}
BUDGET_S=${BUDGET_S:-0}
INIT_DEMO=${INIT_DEMO:-0}
EXPORT=${EXPORT:-"palbert gates"}
FT_ARGS=${FT_ARGS:-}
DEMO_ARGS=${DEMO_ARGS:-}
OUT=${OUT:-/tmp/out}
export PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # many processes share the CPU cores
NG=$(nvidia-smi -L | wc -l)
SLOTS=$((NG * PER_GPU))
R=training/runs/glue
mkdir -p "$OUT" $R
[ -f "$INIT/meta.json" ] || { echo "no checkpoint in $INIT"; exit 1; }
[ -f "$INIT/shard-00.pt" ] || { echo "$INIT/shard-00.pt is missing (git checkout -- $INIT/shard-00.pt)"; exit 1; }
[ -d .data/glue/SST-2 ] || { echo "no .data/glue: carry it (training/README.md)"; exit 1; }
START=$(date +%s)
DEADLINE=0
[ "$BUDGET_S" -gt 0 ] && DEADLINE=$((START + BUDGET_S))
: > $R/jobs.tsv

job() {  # name, command...: run in the background, record rc and wall seconds
  local name=$1
  shift
  (
    s=$(date +%s)
    "$@" > $R/$name.log 2>&1
    rc=$?
    w=$(($(date +%s) - s))
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$w" "$((s - START))" >> $R/jobs.tsv
    echo "JOB $name rc=$rc wall=${w}s (started at +$((s - START))s)"
  ) &
}

i=0
if [ "$INIT_DEMO" = 1 ]; then
  CUDA_VISIBLE_DEVICES=$((i % NG)) job init-demo python3 training/init_demo.py --work $R/init-demo $DEMO_ARGS
  i=$((i + 1))
fi
for t in $TASKS; do
  for m in $METHODS; do
    name=$t-$m-s$SEED
    if [ "$m" = gates ] && [ "$t" = STS-B ]; then echo "skip $name: gates need class probabilities"; continue; fi
    case " $SKIP " in *" $t-$m "*) echo "skip $name (SKIP)"; continue ;; esac
    e=$E_SMALL
    [ "$t" = SST-2 ] && e=$E_BIG
    # Keep at most SLOTS jobs running.
    while [ "$(jobs -rp | wc -l)" -ge "$SLOTS" ]; do wait -n; done
    if [ "$DEADLINE" -gt 0 ] && [ $(($(date +%s) + 60)) -gt "$DEADLINE" ]; then
      echo "skip $name: less than 60 s of the budget left"
      continue
    fi
    CUDA_VISIBLE_DEVICES=$((i % NG)) job "$name" python3 training/finetune.py --task "$t" --method "$m" \
      --glue .data/glue --init "$INIT" --epochs "$e" --seed "$SEED" --deadline "$DEADLINE" \
      --save_model "$([ "$t" = SST-2 ] && echo 1 || echo 0)" --out_dir $R/$name $FT_ARGS
    i=$((i + 1))
  done
done
wait
echo "all jobs done at +$(($(date +%s) - START))s"
sort -t$'\t' -k3 -n -r $R/jobs.tsv | awk -F'\t' '{printf "  %-28s rc %s  %5ss  from +%ss\n", $1, $2, $3, $4}'
grep -h RESULT $R/*.log | cut -c1-400
# Small files only: logs, results, dev predictions, the init demo's summary and exported config.
tar czf "$OUT/glue.tgz" $R/jobs.tsv $R/*.log $R/*/results.json $R/*/dev_predictions.tsv \
  $(ls $R/init-demo/demo.json $R/init-demo/finetune/results.json $R/init-demo/export/config.json \
    $R/init-demo/hf-albert/config.json 2>/dev/null)
for m in $EXPORT; do
  [ -d $R/SST-2-$m-s$SEED/model ] || continue
  EXP=$R/export-sst2-$m
  python3 training/export.py --ckpt $R/SST-2-$m-s$SEED/model --out $EXP --dtype fp16
  # Returned files are at most 16 MiB each (the fp16 PALBERT is about 17 MB): split for the trip;
  # here: cat sst2-$m.safetensors.part-* > model.safetensors
  split -b 15000000 $EXP/model.safetensors "$OUT/sst2-$m.safetensors.part-"
  tar czf "$OUT/sst2-$m-files.tgz" -C $EXP --exclude model.safetensors .
  sha256sum $EXP/model.safetensors
done
echo "glue.sh done at +$(($(date +%s) - START))s"
ls -la "$OUT"
