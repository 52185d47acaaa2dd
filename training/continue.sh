#!/usr/bin/env bash
# One GPU-machine call: continue a pretraining checkpoint data-parallel on every GPU, with the
# learning rate decaying over the last minutes, then a 3-epoch SST-2 probe; the checkpoint, log
# and probe come back in $OUT. Needs .data/prep (built by sweep.sh on this warm machine, or by
# prepare_data.py --tokenizer <the checkpoint folder>).
#   bash training/continue.sh <checkpoint folder> <minutes> <decay minutes> [more pretrain.py flags]
set -uo pipefail
SRC=$1; MIN=$2; DECAY=$3; shift 3
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" training/runs
export PYTHONUNBUFFERED=1
NG=$(nvidia-smi -L | wc -l)
[ -f "$SRC/meta.json" ] || { echo "no checkpoint in $SRC"; exit 1; }
if [ ! -f .data/prep/train.bin ]; then
  python3 training/prepare_data.py --corpus .data/corpus --out .data/prep --tokenizer "$SRC" || exit 1
fi
DST=training/runs/final
# Data parallel without torchrun: one process per GPU, rendezvous on localhost.
export MASTER_ADDR=127.0.0.1 MASTER_PORT=29517 WORLD_SIZE=$NG
for r in $(seq 1 $((NG - 1))); do
  RANK=$r LOCAL_RANK=$r python3 training/pretrain.py --resume "$SRC" --out_dir $DST --max_minutes "$MIN" \
    --decay_minutes "$DECAY" "$@" > training/runs/final.rank$r.log 2>&1 &
done
RANK=0 LOCAL_RANK=0 python3 training/pretrain.py --resume "$SRC" --out_dir $DST --max_minutes "$MIN" \
  --decay_minutes "$DECAY" "$@" 2>&1 | tee training/runs/final.log
wait
python3 training/finetune.py --task SST-2 --glue .data/glue --init $DST --epochs ${EPOCHS:-3} --save_model 0 --out_dir $DST/sst2 \
  2>&1 | tee training/runs/final.sst2.log
mkdir -p "$OUT/ckpt"
cp $DST/meta.json $DST/log.csv $DST/shard-*.pt "$OUT/ckpt/"
tar czf "$OUT/final_logs.tgz" training/runs/final.log training/runs/final.sst2.log $DST/sst2
ls -la "$OUT" "$OUT/ckpt"
