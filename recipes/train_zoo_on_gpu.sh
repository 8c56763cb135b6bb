#!/usr/bin/env bash
# The committed zoo's runs, replayed at the step counts they reached (the model cards list them in order):
#   bash recipes/train_zoo_on_gpu.sh OUTDIR          # on a GPU: tiny-ddpm, and tiny-sd's VAE (its runs 1-3)
#   bash recipes/train_zoo_on_gpu.sh OUTDIR cpu-part # then tiny-sd's runs 4-8, as they ran on a 2-core CPU
#                                                    # (about 2 h 35 min there; minutes on a GPU, same steps)
#   bash recipes/train_zoo_on_gpu.sh OUTDIR ddpm-more # issue 10's last tiny-ddpm target (DDIM 50 / 10 <= 1.02):
#       continue the committed tiny-ddpm for MINUTES (default 6) at the GPU profile, an EMA snapshot each minute,
#       then evaluate_zoo's tiny-ddpm figures for every snapshot and the end (on DEVICE, default cuda), one line each.
#       Pick the first that passes; confirm it on a CPU (`evaluate_zoo.py --only ddpm --path ...`: the committed
#       figures are CPU figures) before it replaces the zoo's. See recipes/sweeps/2026-11-29-s18-*.txt.
#
# Each original run stopped on a time budget (a session here has 15 minutes of device time in all); the step
# counts below are where they stopped, so their learning-rate drop fell at 80% of the minutes, and a replay's
# falls at 80% of the steps. The runs' training.json files and the model cards record the rest:
#   tiny-ddpm: 5,949 steps of 128 in 6.8 min on one NVIDIA H200 (2026-11-27, beside two tiny-sd experiments);
#   tiny-sd runs 1-3 (VAE, decoder, VAE again with --init): 4.2 + 2.2 + 2.8 min on an H200 (2026-11-27; the
#   first two beside two other jobs); runs 4-8 on a 2-core AMD EPYC (2026-11-27 and 28).
set -euo pipefail
out=${1:?usage: train_zoo_on_gpu.sh OUTDIR [cpu-part or ddpm-more]}
here=$(cd "$(dirname "$0")" && pwd)
sd=(python3 "$here/train_tiny_sd.py" --designs all --out "$out/zoo/tiny-sd")
mkdir -p "$out/zoo" "$out/runs"
export TQDM_MININTERVAL=${TQDM_MININTERVAL:-15}
if [ "${2:-}" = ddpm-more ]; then
  run="$out/runs/tiny-ddpm-more"; shopt -s nullglob
  python3 "$here/train_tiny_ddpm.py" --init "$here/../course_utils/zoo/tiny-ddpm" --profile gpu \
    --max-minutes "${MINUTES:-6}" --snapshot-minutes 1 --device "${DEVICE:-cuda}" --out "$out/zoo/tiny-ddpm" --run-dir "$run"
  for s in "$run"/snapshot-* "$out/zoo/tiny-ddpm"; do
    python3 "$here/evaluate_zoo.py" --only ddpm --path "$s" --device "${DEVICE:-cuda}" >/dev/null
    python3 -c 'import json, sys; m = json.load(open(sys.argv[1] + "/metrics.json"))
print(sys.argv[1], "DDIM 50 / 10:", m["ddim_50_vs_10"], "| all targets:", m["passes"], "|",
      " ".join("%s %s" % (k, v["nn_ratio"]) for k, v in m["samplers"].items()))' "$s"
  done
  exit
fi
if [ "${2:-}" = cpu-part ]; then
  "${sd[@]}" --stage unet --norm-groups 8 --profile cpu --batch 64 --steps 6949 --cfg-drop 0.1 --snr-gamma 0 --max-minutes 1000 --run-dir "$out/runs/sd-4"
  "${sd[@]}" --stage decoder --profile cpu --batch 32 --steps 1327 --lr 1e-4 --no-flip --max-minutes 1000 --run-dir "$out/runs/sd-5"
  "${sd[@]}" --stage unet --init "$out/zoo/tiny-sd" --profile cpu --batch 64 --steps 4914 --cfg-drop 0.1 --snr-gamma 0 --max-minutes 1000 --run-dir "$out/runs/sd-6"
  "${sd[@]}" --stage unet --init "$out/zoo/tiny-sd" --profile cpu --batch 64 --steps 2325 --cfg-drop 0.25 --snr-gamma 0 --max-minutes 1000 \
    --run-dir "$out/runs/sd-7"
  "${sd[@]}" --stage decoder --profile cpu --batch 32 --steps 1569 --lr 1e-4 --max-minutes 1000 --run-dir "$out/runs/sd-8"
  exit
fi
python3 "$here/train_tiny_ddpm.py" --profile gpu --steps 5949 \
  --out "$out/zoo/tiny-ddpm" --run-dir "$out/runs/tiny-ddpm" >"$out/ddpm.log" 2>&1 &
ddpm=$!
{ "${sd[@]}" --stage vae --norm-groups 8 --profile gpu --batch 128 --steps 3410 --run-dir "$out/runs/sd-1" &&
  "${sd[@]}" --stage decoder --profile gpu --batch 128 --steps 2690 --no-flip --run-dir "$out/runs/sd-2" &&
  "${sd[@]}" --stage vae --init "$out/zoo/tiny-sd/vae" --profile gpu --batch 256 --steps 4006 --run-dir "$out/runs/sd-3"
} >"$out/sd.log" 2>&1 || echo "tiny-sd VAE FAILED"
wait $ddpm || echo "tiny-ddpm FAILED"
tail -n 3 "$out/ddpm.log" "$out/sd.log"
