#!/usr/bin/env bash
# One GPU-machine call: fine-tune every (task, method) pair from a pretraining checkpoint, several
# processes per GPU (the model is small and launch-bound), then bring back results, per-example dev
# predictions and the SST-2 PALBERT model exported for the browser (fp16, split in parts < 16 MiB). Needs `carry: [".data"]` (GLUE).
#   bash training/glue.sh [init] [SST-2 epochs] [other tasks' epochs]
#   METHODS="full palbert" TASKS="SST-2 RTE" PER_GPU=3 SEED=42 bash training/glue.sh ...
set -uo pipefail
INIT=${1:-training/artifacts/pretrain}
E_BIG=${2:-4}
E_SMALL=${3:-10}
METHODS=${METHODS:-"full palbert pondernet pabee"}
TASKS=${TASKS:-"SST-2 CoLA MRPC RTE STS-B"}
PER_GPU=${PER_GPU:-3}
SEED=${SEED:-42}
OUT=${OUT:-/tmp/out}
export PYTHONUNBUFFERED=1
NG=$(nvidia-smi -L | wc -l)
SLOTS=$((NG * PER_GPU))
mkdir -p "$OUT" training/runs/glue
[ -f "$INIT/meta.json" ] || { echo "no checkpoint in $INIT"; exit 1; }

i=0
for t in $TASKS; do
  for m in $METHODS; do
    e=$E_SMALL
    [ "$t" = SST-2 ] && e=$E_BIG
    name=$t-$m-s$SEED
    # Keep at most SLOTS jobs running.
    while [ "$(jobs -rp | wc -l)" -ge "$SLOTS" ]; do wait -n; done
    CUDA_VISIBLE_DEVICES=$((i % NG)) python3 training/finetune.py --task "$t" --method "$m" --glue .data/glue \
      --init "$INIT" --epochs "$e" --seed "$SEED" --save_model "$([ "$t" = SST-2 ] && echo 1 || echo 0)" \
      --out_dir training/runs/glue/$name > training/runs/glue/$name.log 2>&1 &
    i=$((i + 1))
  done
done
wait
grep -h RESULT training/runs/glue/*.log | cut -c1-400
tar czf "$OUT/glue.tgz" training/runs/glue/*.log training/runs/glue/*/results.json training/runs/glue/*/dev_predictions.tsv
if [ -d training/runs/glue/SST-2-palbert-s$SEED/model ]; then
  EXP=training/runs/glue/export-sst2-palbert
  python3 training/export.py --ckpt training/runs/glue/SST-2-palbert-s$SEED/model --out $EXP --dtype fp16
  # Files come back at most 16 MiB each and the fp16 PALBERT is about 17 MB: split it for the trip;
  # here: cat sst2-palbert.safetensors.part-* > model.safetensors
  split -b 15000000 $EXP/model.safetensors "$OUT/sst2-palbert.safetensors.part-"
  tar czf "$OUT/sst2-palbert-files.tgz" -C $EXP --exclude model.safetensors .
  sha256sum $EXP/model.safetensors
fi
ls -la "$OUT" "$OUT"/*/ 2>/dev/null
