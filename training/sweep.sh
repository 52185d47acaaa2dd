#!/usr/bin/env bash
# One GPU-machine call: build the tokenizer and data, pretrain four recipes side by side (one per
# GPU; several share a GPU when fewer are present), then a 2-epoch SST-2 probe of each and of
# random weights. Run from the repo root with `carry: [".data"]` (see training/README.md).
#   bash training/sweep.sh [minutes per recipe]
set -uo pipefail
MIN=${1:-6}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" training/runs
export PYTHONUNBUFFERED=1
NG=$(nvidia-smi -L | wc -l)
nvidia-smi -L
python3 -c 'import torch, tokenizers; print("torch", torch.__version__, "tokenizers", tokenizers.__version__)'

python3 training/prepare_data.py --corpus .data/corpus --glue .data/glue --out .data/prep 2>&1 | tee training/runs/prep.log
[ -f .data/prep/train.bin ] || { echo "prepare_data failed"; exit 1; }

# name | overrides. Shared: post-LN ALBERT E128 H512 I2048 x12, sinusoidal-initialised positions,
# whole-word masking 15%, AdamW(0.9, 0.98), warm-up 1000, constant LR (no decay: recipes compare
# at equal wall time).
declare -A R
R[g0_base]="--seq_len 128 --batch_size 256 --lr 5e-4"
R[g1_depth]="--seq_len 128 --batch_size 256 --lr 5e-4 --depth_schedule 0:3,2000:6,4000:12"
R[g2_short]="--seq_len 64 --batch_size 512 --lr 5e-4"
R[g3_aggr]="--seq_len 64 --batch_size 512 --lr 1e-3 --depth_schedule 0:3,2000:6,4000:12"
NAMES=(g0_base g1_depth g2_short g3_aggr)

i=0
for n in "${NAMES[@]}"; do
  CUDA_VISIBLE_DEVICES=$((i % NG)) python3 training/pretrain.py --out_dir training/runs/$n --max_minutes "$MIN" \
    ${R[$n]} > training/runs/$n.log 2>&1 &
  i=$((i + 1))
done
wait
for n in "${NAMES[@]}"; do echo "== $n"; tail -n 3 training/runs/$n.log; done

# What pretraining measured comes back even if the probes below run out of time.
tar czf "$OUT/sweep.tgz" training/runs/*.log training/runs/*/log.csv training/runs/*/meta.json .data/prep/*.json \
  .data/prep/vocab.txt

i=0
for n in "${NAMES[@]}"; do
  CUDA_VISIBLE_DEVICES=$((i % NG)) python3 training/finetune.py --task SST-2 --glue .data/glue --init training/runs/$n \
    --epochs 2 --save_model 0 --out_dir training/runs/$n/sst2 > training/runs/$n.sst2.log 2>&1 &
  i=$((i + 1))
done
CUDA_VISIBLE_DEVICES=0 python3 training/finetune.py --task SST-2 --glue .data/glue --init '' --tokenizer .data/prep \
  --epochs 2 --save_model 0 --out_dir training/runs/random/sst2 > training/runs/random.sst2.log 2>&1 &
wait
grep -h RESULT training/runs/*.sst2.log

# Best recipe by SST-2 probe accuracy (a dev-set choice: say so wherever it is reported).
python3 - <<'EOF' > training/runs/best.txt
import json, glob, os
best = max((json.load(open(p))['final']['acc'], p.split('/')[2]) for p in glob.glob('training/runs/g*/sst2/results.json'))
print(best[1])
EOF
BEST=$(cat training/runs/best.txt)
echo "best: $BEST"
tar czf "$OUT/sweep.tgz" training/runs/*.log training/runs/best.txt training/runs/*/log.csv training/runs/*/meta.json \
  training/runs/*/sst2 .data/prep/meta.json .data/prep/tokenizer.json .data/prep/tokenizer_config.json \
  .data/prep/special_tokens_map.json .data/prep/vocab.txt
mkdir -p "$OUT/best"
cp training/runs/$BEST/meta.json training/runs/$BEST/shard-*.pt "$OUT/best/"
ls -la "$OUT" "$OUT/best"
