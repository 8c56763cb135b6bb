#!/usr/bin/env bash
# Train the whole zoo on one GPU in about 6 minutes: the run that made the committed weights.
#   bash recipes/train_zoo_on_gpu.sh OUTDIR [DDPM_MIN VAE_MIN UNET_MIN]
# tiny-ddpm trains beside tiny-sd (two processes share the GPU: these models are too small to fill it).
# Each stage stops at its step count or its minute budget, whichever comes first; training.json
# records the steps reached, and `--steps N` replays a run on any machine.
set -euo pipefail
out=${1:?usage: train_zoo_on_gpu.sh OUTDIR}
ddpm_min=${2:-4.5}; vae_min=${3:-1.5}; unet_min=${4:-3.5}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/zoo" "$out/runs"
export TQDM_MININTERVAL=${TQDM_MININTERVAL:-15}
python3 "$here/train_tiny_ddpm.py" --profile gpu --max-minutes "$ddpm_min" \
  --out "$out/zoo/tiny-ddpm" --run-dir "$out/runs/tiny-ddpm" >"$out/ddpm.log" 2>&1 &
ddpm=$!
# Optional: TAR_TO=DIR packs each finished model there at once (for machines you must copy back from).
pack() { [ -z "${TAR_TO:-}" ] || (cd "$out" && tar czf "$TAR_TO/$1.tgz" "${@:2}"); }
{ python3 "$here/train_tiny_sd.py" --stage vae --profile gpu --max-minutes "$vae_min" \
    --out "$out/zoo/tiny-sd" --run-dir "$out/runs/tiny-sd" &&
  python3 "$here/train_tiny_sd.py" --stage unet --profile gpu --max-minutes "$unet_min" \
    --out "$out/zoo/tiny-sd" --run-dir "$out/runs/tiny-sd"; } >"$out/sd.log" 2>&1 || echo "tiny-sd FAILED"
pack tiny-sd-unet zoo/tiny-sd/unet zoo/tiny-sd/scheduler zoo/tiny-sd/model_index.json
pack tiny-sd-rest zoo/tiny-sd/vae zoo/tiny-sd/text_encoder zoo/tiny-sd/samples.png runs/tiny-sd sd.log
wait $ddpm || echo "tiny-ddpm FAILED"
pack tiny-ddpm zoo/tiny-ddpm runs/tiny-ddpm ddpm.log
tail -n 3 "$out/ddpm.log" "$out/sd.log"
