"""Write the model cards (README.md) of the tiny zoo from its training.json and metrics.json.

    python recipes/write_model_cards.py            # write them
    python recipes/write_model_cards.py --check    # fail if a committed card is out of date

Every figure in a card comes from those files, which the recipes and ``recipes/evaluate_zoo.py``
write (and ``cpu_run.json``, written by ``recipes/record_cpu_run.py``); nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import json
import sys

from common import ZOO
from train_tiny_sd import CFG_DROP, DEFAULT_LR, profile_default

from course_utils.emoji_data import DESIGNS


def trained_designs(info: dict) -> list[str]:
    """The emoji designs a run trained on: ``training.json``'s ``designs`` (runs made before the course had
    more than one design trained on Noto Color Emoji only)."""
    return list(info.get("designs", ["noto"]))


def designs_phrase(names: list[str]) -> str:
    return " and ".join(DESIGNS[n].title for n in names)


def license_notes(used: list[str]) -> str:
    """Credits of every emoji design in the course's data, saying which ones these weights saw."""
    lines = ["## License notes", "- Weights: Apache-2.0, like the course.",
             "- Training images: emoji pictures from `course_utils.emoji_data`, in these designs:"]
    for d in DESIGNS.values():
        use = "used for these weights" if d.name in used else "in the course's data, not used for these weights"
        lines.append(f"  - [{d.title}]({d.url}): {d.licence}; from {d.source} ({use}).")
    lines.append("- Captions: emoji names from the [`emoji`](https://pypi.org/project/emoji/) package, which takes them\n"
                 "  from the Unicode CLDR (Unicode License). A caption never names the design.")
    return "\n".join(lines)


def _minutes(m: float) -> str:
    return f"{m:.1f} min"


def _time(stage: dict) -> str:
    wall = f"; the whole command {stage['wall_minutes']:.1f} min" if "wall_minutes" in stage else ""
    return f"{_minutes(stage['minutes'])} of training{wall}"


def ddpm_cpu_section(m_gpu: dict, committed: dict) -> str:
    f = ZOO / "tiny-ddpm" / "cpu_run.json"
    if not f.exists():
        return ""
    run = json.loads(f.read_text())
    t, m = run["stages"]["model"], run["metrics"]
    if committed.get("profile") == "cpu" and t["steps"] == committed["steps"] and t["minutes"] == committed["minutes"]:
        return f"""
## Trained on a CPU: the default recipe is the committed run
`python recipes/train_tiny_ddpm.py`, with no arguments, is the run these weights come from: {_time(t)}
on {t['hardware']} (torch {t['torch']}), {t['steps']:,} steps × {t['batch']} before the CPU profile's
55-minute cap. On a slower machine it stops earlier; `--steps {t['steps']}` replays the same step count there
(an explicit `--steps` lifts the cap).
"""
    return f"""
## Trained on a CPU instead: the default recipe, measured
`python recipes/train_tiny_ddpm.py` (the CPU profile, {t['steps']:,} steps × {t['batch']}, seed {t['seed']}) took
{_time(t)} on {t['hardware']} (torch {t['torch']}). Its weights are not committed; the command
above rebuilds them. Evaluated the same way:

| metric | CPU run | committed weights (GPU) |
|---|---:|---:|
| DDPM 50: nearest-real distance / real leave-one-out | {m['nn_ratio']:.3f} | {m_gpu['nn_ratio']:.3f} |
| DDPM 50: mean pairwise distance / real's | {m['diversity_ratio']:.3f} | {m_gpu['diversity_ratio']:.3f} |
| DDPM 50: mean absolute gradient / real's | {m['sharpness_ratio']:.3f} | {m_gpu['sharpness_ratio']:.3f} |
| every sampler passes those three | {_all_samplers(m)} | {_all_samplers(m_gpu)} |
| DDIM 50 vs 10 (target ≤ {m['thresholds']['ddim_50_vs_10_max']}) | {_fig(m, 'ddim_50_vs_10', '{:.3f}')} | {_fig(m_gpu, 'ddim_50_vs_10', '{:.3f}')} |

![samples of the CPU run](samples-cpu.png)

*The CPU run's samples: 16 samples, 50 DDPM steps, seed 0.*
"""


def _all_samplers(m: dict) -> str:
    """Whether every sampler's samples pass nearest-real, diversity and sharpness (not the DDIM 50 vs 10 target)."""
    if "samplers" not in m:
        return "not measured"
    return "yes" if all(r["passes"] for r in m["samplers"].values()) else "NO"


def sd_cpu_section(m_gpu: dict) -> str:
    f = ZOO / "tiny-sd" / "cpu_run.json"
    if not f.exists():
        return ""
    run = json.loads(f.read_text())
    v, u, m = run["stages"]["vae"], run["stages"]["unet"], run["metrics"]
    return f"""
## An earlier run: both stages on a CPU
Both stages with their CPU profiles and that day's defaults ({designs_phrase(trained_designs(u))},
{u.get('norm_groups', 32)} groups), each its own command, on {v['hardware']} (torch {v['torch']}), measured
with that day's evaluator (its held-out set: {m['heldout_images']} emoji). Their weights are not committed; the
commands rebuild them (seed {v['seed']}).

| stage | command | steps × batch | time |
|---|---|---|---|
| 1. VAE | `{_sd_flags("vae", v)}` | {v['steps']:,} × {v['batch']} | {_time(v)} |
| 2. text encoder + UNet | `{_sd_flags("unet", u)}` | {u['steps']:,} × {u['batch']} | {_time(u)} |

| metric | that CPU run | the committed weights |
|---|---:|---:|
| seeds (ratio, as above) | {_fig(m, 'seed_ratio', '{:.2f}')} | {_fig(m_gpu, 'seed_ratio', '{:.2f}')} |
| prompt adherence at guidance 7.5 (top 10 of all emoji) | {m['top10_at_7.5']:.0%} | {m_gpu['top10_at_7.5']:.0%} |
| the same at guidance 1.0 | {m['top10_at_1.0']:.0%} | {m_gpu['top10_at_1.0']:.0%} |
| VAE PSNR on the held-out emoji | {m['vae_psnr_heldout_db']:.2f} dB | {m_gpu['vae_psnr_heldout_db']:.2f} dB |
| all targets of its day hold | {'yes' if m['passes'] else 'NO'} | {'yes' if m_gpu['passes'] else 'NO'} |

![samples of the CPU run](samples-cpu.png)

*The CPU run's samples, the same eight prompts: UniPC, 25 steps, guidance 7.5, seed 0.*
"""


def _sd_flags(stage: str, info: dict, groups: bool = True) -> str:
    """The recipe command of one tiny-sd stage, its designs and GroupNorm groups spelled out (the decoder stage keeps
    the loaded VAE's groups: ``groups=False``)."""
    designs = "all" if trained_designs(info) != ["noto"] else "noto"
    cmd = f"python recipes/train_tiny_sd.py --stage {stage} --designs {designs}"
    return cmd + f" --norm-groups {info.get('norm_groups', 32)}" if groups else cmd


def _sd_command(stage: str, info: dict, groups: bool = True) -> str:
    """The command that replays one tiny-sd stage: its profile, batch and step count as well (and the learning rate
    where it was not the stage's default)."""
    lr = info.get("lr")
    lr = f" --lr {lr:g}" if lr and lr != DEFAULT_LR[stage] else ""
    # a UNet run names --cfg-drop / --snr-gamma where its value is not its profile's default
    drop = info.get("cfg_drop", CFG_DROP)  # runs before the flag: 0.1
    drop = f" --cfg-drop {drop:g}" if stage == "unet" and drop != profile_default(info["profile"], stage, "cfg_drop") else ""
    flip = " --no-flip" if stage == "decoder" and not info.get("flip") else ""  # runs before --flip was the default
    schedule = f" --schedule {info['schedule']}" if info.get("schedule", "tail") != "tail" else ""  # older runs: tail
    gamma = info.get("snr_gamma") or 0  # runs before the flag: plain MSE
    gamma = f" --snr-gamma {gamma:g}" if stage == "unet" and gamma != profile_default(info["profile"], stage, "snr_gamma") else ""
    return (_sd_flags(stage, info, groups) + f" --profile {info['profile']} --batch {info['batch']} "
            f"--steps {info['steps']}{lr}{drop}{flip}{schedule}{gamma}")



STAGE_LABEL = {"vae": "VAE", "unet": "text encoder + UNet", "decoder": "VAE decoder (encoder frozen)"}
INIT_LABEL = {"vae": "VAE, continued (encoder and all: `--init`)", "unet": "text encoder + UNet, continued (`--init`)"}
INIT_ARG = {"vae": "OUT/vae", "unet": "OUT"}


def sd_runs(t: dict) -> list[dict]:
    """tiny-sd's runs in the order they ran (``training.json``'s ``runs``, each with its ``stage``), checked: the
    UNet is trained on the encoder's latents, so no VAE-stage run (which changes the encoder) may follow a UNet run."""
    runs = t["runs"]
    stages = [r["stage"] for r in runs]
    if "vae" not in stages or "unet" not in stages:
        raise SystemExit(f"tiny-sd/training.json: its runs ({stages}) need a vae run and a unet run")
    last_vae, first_unet = max(i for i, s in enumerate(stages) if s == "vae"), stages.index("unet")
    if last_vae > first_unet:
        raise SystemExit(f"tiny-sd/training.json: a vae run (#{last_vae + 1}) follows the first unet run "
                         f"(#{first_unet + 1}); the UNet would not match the encoder's latents. Train the UNet again.")
    return runs


def _run_row(i: int, r: dict) -> str:
    stage, init = r["stage"], r.get("init")
    cmd = _sd_command(stage, r, groups=stage != "decoder" and not init) + (f" --init {INIT_ARG[stage]}" if init else "")
    label = INIT_LABEL[stage] if init else STAGE_LABEL[stage]
    return f"| {i}. {label} | `{cmd}` | {r['steps']:,} × {r['batch']} | {_minutes(r['minutes'])} on {r['hardware']} |"


def _decoder_text(runs: list[dict]) -> str:
    d = next((r for r in runs if r["stage"] == "decoder"), None)
    if not d:
        return ""
    return (f"\nThe decoder stage fine-tunes the VAE's decoder alone ({d['parameters'] / 1e6:.2f} M parameters, with "
            f"`post_quant_conv`) on {designs_phrase(trained_designs(d))}, with the VAE stage's reconstruction loss, AdamW "
            f"at {DEFAULT_LR['decoder']} unless the table says otherwise{_lr_tail(d)}; its CPU profile takes "
            f"steps of 8 and stops after 55 minutes. The encoder stays bit for bit as the VAE stage left it, so the "
            f"latents the UNet was trained on, and the scaling factor, are unchanged: only the way latents become pixels improves.{_flip_text(runs)}")


def _flip_text(runs: list[dict]) -> str:
    """What the decoder runs with ``--flip`` (the default) did: mirror half of each batch."""
    flipped = [r for r in runs if r["stage"] == "decoder" and r.get("flip")]
    if not flipped:
        return ""
    return (f" With `--flip` (the default; the runs without it say `--no-flip`) half of each batch is the emoji "
            f"mirrored left to right, except the {flipped[-1]['not_mirrored']} training emoji whose mirror twin is "
            f"held out (\"woman walking\" and \"woman walking facing right\", \"left-facing fist\" and "
            f"\"right-facing fist\"): the decoder then sees twice as many different pictures, and the held-out "
            f"figure measures pictures it has never seen.")


def _lr_tail(info: dict) -> str:
    """The learning rate's drop for the last 20% of a run, where the run recorded one."""
    tail = info.get("lr_tail")
    return f", {tail:g}× that for the last 20% of the run" if tail else ""


def _fig(m: dict, key: str, fmt: str) -> str:
    return fmt.format(m[key]) if key in m else "not measured"


def _mark(m: dict, key: str, minimum: float) -> str:
    return "" if key not in m else "✓" if m[key] >= minimum else "✗ not met"


def _timestep_phrase(t: dict) -> str:
    share, frm, w = t.get("high_t_share", 0.0), t.get("high_t_from", 700), t.get("high_t_weight", 1.0)
    parts = [f"{share:.0%} of each batch drawn from t ≥ {frm}, the rest uniform" if share else "uniform"]
    if w > 1:
        parts.append(f"each example's loss weighted by 1/SNR_t = σ_t², clamped to [1, {w:g}]")
    return "; ".join(parts)


def _ddpm_provenance(t: dict) -> str:
    if t.get("profile") == "cpu":
        return ("The committed weights are the default recipe's own output on a 2-core CPU: the CPU profile stops at "
                "55 minutes, and the step count above is where it stopped; `--steps` replays it on any machine.")
    return ("The committed weights come from a GPU run that stopped on a time budget; the step count above is where\n"
            "it stopped, and `--steps` replays it on any machine (`bash recipes/train_zoo_on_gpu.sh` replays the\n"
            "GPU part of the zoo). The CPU profile (`--profile cpu`, the default) is the recipe sized for a\n"
            "2-core CPU: its measured full run is below, if one has been recorded.")


def _ddpm_quality(m: dict) -> str:
    th = m["thresholds"]
    head = ("64 samples per sampler against 64 random real face emoji (both designs), pixel distances at 32 px.\n"
            "Each sampler is notebook 03's swap: `from_config` of this folder's scheduler config, library defaults\n"
            "otherwise (so DDIM inherits `clip_sample=True`), the same starting noise.\n\n"
            f"Targets: nearest-real distance / the real set's leave-one-out figure ≤ {th['nn_ratio_max']}; mean pairwise "
            f"distance / real's ≥ {th['diversity_ratio_min']}; mean absolute gradient / real's ≥ "
            f"{th['sharpness_ratio_min']}.\n\n")
    table = ["| sampler, steps | nearest real | diversity | sharpness | all three hold |", "|---|---:|---:|---:|---|"]
    for name, r in m["samplers"].items():
        table.append(f"| {name} | {r['nn_ratio']:.3f} | {r['diversity_ratio']:.3f} | {r['sharpness_ratio']:.3f} | "
                     f"{'yes' if r['passes'] else 'NO'} |")
    limit = th["ddim_50_vs_10_max"]
    tail = (f"\n\nDDIM at 50 steps against DDIM at 10 (nearest-real ratio): {m['ddim_50_vs_10']:.3f}, target ≤ {limit} "
            f"({'met' if m['ddim_50_vs_10'] <= limit else 'NOT met'}). Every target together: "
            f"{'yes' if m['passes'] else 'NO'}.")
    return (head + "\n".join(table) + tail
            + f"\n\n(Measured on {m['machine']}, torch {m['torch']}, in {m['seconds']} s.)")


def ddpm_card() -> str:
    t = json.loads((ZOO / "tiny-ddpm" / "training.json").read_text())
    m = json.loads((ZOO / "tiny-ddpm" / "metrics.json").read_text())
    return f"""---
library_name: diffusers
pipeline_tag: unconditional-image-generation
license: apache-2.0
tags: [diffusers, ddpm, tiny, course]
---
# tiny-ddpm: the course's offline stand-in for `google/ddpm-cat-256`

A `UNet2DModel` ({t['parameters'] / 1e6:.2f} M parameters, 32×32 RGB) with the same `DDPMScheduler`
settings as `google/ddpm-cat-256` (1,000 linear betas, `clip_sample`), in the same root-level layout:
`DDPMPipeline`, `UNet2DModel` and `DDPMScheduler` all load from this one folder.

![samples](samples.png)

*16 samples, 50 DDPM steps, seed 0.*

## Data
The {t['images']} emoji whose English name contains the word "face" (cat face, grinning face, …), drawn
in {designs_phrase(trained_designs(t))} at 32 px by `course_utils.emoji_data`, with random horizontal flips.

## Training
| | |
|---|---|
| recipe | `python recipes/train_tiny_ddpm.py --profile {t['profile']} --steps {t['steps']}` |
| steps × batch | {t['steps']} × {t['batch']}, AdamW lr {t['lr']}, EMA {t.get('ema', 0.999)}, seed {t['seed']} |
| model | `norm_num_groups={t.get('norm_groups', 32)}` |
| timesteps | {_timestep_phrase(t)} |
| time | {_minutes(t['minutes'])} on {t['hardware']} (torch {t['torch']}) |
| final loss | {t['final_loss']:.4f} (ε-prediction MSE{', weighted' if t.get('high_t_weight', 1) > 1 else ''}) |

{_ddpm_provenance(t)}

## Quality (`python recipes/evaluate_zoo.py`)
{_ddpm_quality(m)}
{ddpm_cpu_section(m, t)}
{license_notes(trained_designs(t))}
"""


def sd_card() -> str:
    t = json.loads((ZOO / "tiny-sd" / "training.json").read_text())
    runs = sd_runs(t)
    vaes = [r for r in runs if r["stage"] == "vae"]
    v0, v, u = vaes[0], vaes[-1], next(r for r in runs if r["stage"] == "unet")  # the final VAE: the last VAE run's
    rows = "\n".join(_run_row(i, r) for i, r in enumerate(runs, 1))
    m = json.loads((ZOO / "tiny-sd" / "metrics.json").read_text())
    th = m["thresholds"]
    return f"""---
library_name: diffusers
pipeline_tag: text-to-image
license: apache-2.0
tags: [diffusers, stable-diffusion, tiny, course]
---
# tiny-sd: the course's offline stand-in for `CompVis/stable-diffusion-v1-4`

The same layout and classes as the real repository: `model_index.json` and the subfolders `vae/`
(`AutoencoderKL`), `tokenizer/` (CLIP's real BPE tokenizer: 49,408 tokens, 77 positions), `text_encoder/`
(`CLIPTextModel`), `unet/` (`UNet2DConditionModel`) and `scheduler/` (`PNDMScheduler` with SD's
scaled-linear betas, 0.00085 to 0.012). No safety checker. 64×64 images from 8×8×4 latents.

![samples](samples.png)

*"cat face", "red heart", "flag Japan", "grinning face", "rocket", "sun", "pizza", "green apple":
UniPC, 25 steps, guidance 7.5, seed 0.*

| part | parameters |
|---|---:|
| vae | {v['parameters'] / 1e6:.2f} M |
| text_encoder | {u['parameters']['text_encoder'] / 1e6:.2f} M (2 layers, hidden size 64; most of it is the 49,408-token embedding) |
| unet | {u['parameters']['unet'] / 1e6:.2f} M |

`vae.config.scaling_factor` = {v['scaling_factor']:.5f}: one over the standard deviation of the VAE's
latents on the training emoji, measured after the VAE stage (SD v1's 0.18215 was found the same way).

## Data
The {m['train_images']:,} training pictures: every fully-qualified emoji that {designs_phrase(trained_designs(u))} {'draws' if len(trained_designs(u)) == 1 else 'draw'}, less a
held-out tenth of the captions fixed by a seed (`course_utils/data/heldout_captions.txt`), at 64 px; the caption is
the emoji's English name ("cat face", "red heart", "flag Japan", "waving hand medium skin tone").

## Training
The runs in the order they ran, each reading and writing the folder `--out` (OUT):

| run | recipe | steps × batch | time |
|---|---|---|---|
{rows}

The VAE stage minimises MSE + L1 reconstruction with a small KL term ({designs_phrase(trained_designs(v0))}, GroupNorm with
{v0.get('norm_groups', 32)} groups). The UNet stage trains the text encoder and the UNet together from scratch on ε-prediction
({designs_phrase(trained_designs(u))}, GroupNorm with {u.get('norm_groups', 32)} groups), with the caption replaced by the
empty prompt for {u['cfg_drop']:.0%} of the examples (`--cfg-drop`; a run in the table may say otherwise) so that
classifier-free guidance works; AdamW at {u['lr']}{_lr_tail(u)},
EMA 0.999, seed {u['seed']}, torch {u['torch']}. Each run stops at its profile's step count or time budget (a CPU run
after 55 minutes); `--steps` replays it on any machine. The UNet stage reads the VAE from OUT, so runs may come from
different machines, as the table says. `--init` continues the weights an earlier run left in OUT, with a fresh
optimiser and warm-up (a VAE run with `--init` trains the encoder too, so every VAE run comes before the UNet's).{_decoder_text(runs)}

## Quality (`python recipes/evaluate_zoo.py`)
| metric | value | target |
|---|---:|---|
| seeds: mean distance between the 4 seeds' images of one prompt (20 training captions, guidance 7.5, 64 px), over the mean distance between two different real emoji | {_fig(m, 'seed_ratio', '{:.2f}')} | ≥ {th['seed_ratio_min']} {_mark(m, 'seed_ratio', th['seed_ratio_min'])} |
| prompt adherence: caption's own emoji (any design) among the 10 nearest of all emoji (16×16 pixels), 100 training captions, guidance 7.5 | {m['top10_at_7.5']:.0%} | ≥ {th['top10_min']:.0%} {_mark(m, 'top10_at_7.5', th['top10_min'])} |
| the same at guidance 1.0 | {m['top10_at_1.0']:.0%} | at least {th['guidance_gap_min']:.0%} points below: {_fig(m, 'guidance_gap', '{:.0%}')} {_mark(m, 'guidance_gap', th['guidance_gap_min'] - 1e-9)} |
| VAE reconstruction PSNR on the {m['heldout_images']} held-out emoji (every design) | {m['vae_psnr_heldout_db']:.2f} dB | ≥ {th['psnr_min']} dB {_mark(m, 'vae_psnr_heldout_db', th['psnr_min'])} |

All hold: {'yes' if m['passes'] else 'NO'}. (UniPC, 25 steps; measured on {m['machine']}, torch {m['torch']}, in {m['seconds']} s.)
{sd_cpu_section(m)}
{license_notes(trained_designs(u))}
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the committed cards, write nothing")
    args = ap.parse_args()
    stale = []
    for name, card in (("tiny-ddpm", ddpm_card()), ("tiny-sd", sd_card())):
        path = ZOO / name / "README.md"
        if args.check:
            if not path.exists() or path.read_text() != card:
                stale.append(str(path))
            continue
        path.write_text(card)
        print("wrote", path)
    if stale:
        print("out of date (run `python recipes/write_model_cards.py`):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
