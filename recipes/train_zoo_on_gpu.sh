#!/usr/bin/env bash
# The GPU parts of the committed zoo, replayed at the step counts they reached.
#   bash recipes/train_zoo_on_gpu.sh OUTDIR            # tiny-ddpm, and tiny-sd's VAE (stage 1), side by side
#   python recipes/train_tiny_sd.py --stage unet    --out OUTDIR/zoo/tiny-sd   # stage 2: 55 min on a 2-core CPU
#   python recipes/train_tiny_sd.py --stage decoder --out OUTDIR/zoo/tiny-sd   # stage 3a: 25 min on a 2-core CPU
#   bash recipes/train_zoo_on_gpu.sh OUTDIR decoder    # stage 3b: the decoder again, on the GPU
#
# Each original run stopped on a time budget (a session here has 15 minutes of device time in all); the step
# counts below are where they stopped, so their learning-rate drop (decoder) fell at 80% of the minutes, and a
# replay's falls at 80% of the steps. The runs' training.json files and the model cards record the rest:
#   tiny-ddpm: 5,949 steps of 128 in 6.8 min on one NVIDIA H200 (2026-11-27, beside two tiny-sd experiments);
#   tiny-sd stage 1: 2,323 steps of 64 in 1.3 min on an H200 (2026-11-26);
#   tiny-sd stage 3b: 8,721 steps of 128 in 7.0 min on an H200 (2026-11-27, beside tiny-ddpm and an experiment).
set -euo pipefail
out=${1:?usage: train_zoo_on_gpu.sh OUTDIR [decoder]}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/zoo" "$out/runs"
export TQDM_MININTERVAL=${TQDM_MININTERVAL:-15}
if [ "${2:-}" = decoder ]; then
  python3 "$here/train_tiny_sd.py" --stage decoder --profile gpu --batch 128 --steps 8721 \
    --out "$out/zoo/tiny-sd" --run-dir "$out/runs/tiny-sd-3b"
  exit
fi
python3 "$here/train_tiny_ddpm.py" --profile gpu --steps 5949 \
  --out "$out/zoo/tiny-ddpm" --run-dir "$out/runs/tiny-ddpm" >"$out/ddpm.log" 2>&1 &
ddpm=$!
python3 "$here/train_tiny_sd.py" --stage vae --profile gpu --steps 2323 \
  --out "$out/zoo/tiny-sd" --run-dir "$out/runs/tiny-sd" >"$out/sd.log" 2>&1 || echo "tiny-sd VAE FAILED"
wait $ddpm || echo "tiny-ddpm FAILED"
tail -n 3 "$out/ddpm.log" "$out/sd.log"
