#!/usr/bin/env bash
# The GPU numbers in one go (a few minutes of an H100): pretraining throughput and MFU at
# GPT-2 small's shape with torch.compile, cached vs uncached decoding, and the online step split.
#     bash bench/gpu_check.sh        (results go to $OUT when set, else to bench/)
set -u
cd "$(dirname "$0")/.."
dest=${OUT:-bench}
mkdir -p "$dest"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$dest/gpu_check.log"
status=0
timeout 300 python bench/pretrain.py --device=cuda --compile=True --n_layer=12 --n_head=12 --n_embd=768 \
    --block_size=1024 --batch_size=16 --steps=20 --warmup=5 --out="$dest/pretrain.json" 2>&1 | tee -a "$dest/gpu_check.log"
status=$((status | PIPESTATUS[0]))
timeout 180 python bench/generate.py --device=cuda --out="$dest/generate.json" 2>&1 | tee -a "$dest/gpu_check.log"
status=$((status | PIPESTATUS[0]))
# the online step split on the GPU: on out/base.pt when it was carried over, else on a short-trained base
base=out/base.pt
if [ ! -f "$base" ]; then
    timeout 240 python train.py --device=cuda --max_iters=1000 --ft_iters=0 --eval_tasks=0 --out_dir="$dest/gpu_base" \
        2>&1 | tail -3 | tee -a "$dest/gpu_check.log"
    base="$dest/gpu_base/base.pt"
fi
timeout 240 python bench/online_step.py --device=cuda --ckpt="$base" --out="$dest/online_step.json" 2>&1 \
    | tee -a "$dest/gpu_check.log"
status=$((status | PIPESTATUS[0]))
exit $status
