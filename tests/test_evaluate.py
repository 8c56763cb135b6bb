"""The zoo's quality metrics tell real emoji from noise, blur and collapse."""

import subprocess
import sys

import torch
import torch.nn.functional as F
from evaluate_zoo import THRESHOLDS, ddpm_ratios, mean_pair_distance, top10_share

from course_utils.emoji_data import load_emoji


def faces():
    data = load_emoji(32, designs="all")
    idx = data.subset("face")
    return (data.tensor(idx[:64]) + 1) / 2, (data.tensor(idx[64:128]) + 1) / 2


def passes(m):
    return (m["nn_ratio"] <= THRESHOLDS["nn_ratio_max"] and m["diversity_ratio"] >= THRESHOLDS["diversity_ratio_min"]
            and m["sharpness_ratio"] >= THRESHOLDS["sharpness_ratio_min"])


def test_real_emoji_pass():
    real, other = faces()
    assert passes(ddpm_ratios(other, real))


def test_noise_blur_and_collapse_fail():
    real, other = faces()
    noise = torch.rand_like(other)
    blurred = F.avg_pool2d(other, 5, stride=1, padding=2)
    collapsed = other[:1].repeat(len(other), 1, 1, 1)
    assert ddpm_ratios(noise, real)["nn_ratio"] > THRESHOLDS["nn_ratio_max"]
    assert ddpm_ratios(blurred, real)["sharpness_ratio"] < THRESHOLDS["sharpness_ratio_min"]
    assert ddpm_ratios(collapsed, real)["diversity_ratio"] < THRESHOLDS["diversity_ratio_min"]


def test_top10_share():
    data = load_emoji(64, designs="all")
    all_16 = F.interpolate((data.tensor() + 1) / 2, size=16, mode="area")
    picked = [5, 500, 3000]
    own = [{i for i, c in enumerate(data.captions) if c == data.captions[p]} for p in picked]
    assert all(len(o) == 2 for o in own), "every caption has a picture in each design"
    exact = (data.tensor(picked) + 1) / 2
    assert top10_share(exact, own, all_16) == 1.0
    assert top10_share(torch.ones_like(exact) * 0.5, own, all_16) < 1.0
    assert top10_share(exact, picked, all_16) == 1.0  # one index per image (an int) also works
    # a picture of another emoji does not count as adherence
    assert top10_share(exact, [own[1], own[2], own[0]], all_16) < 1.0


def test_seed_figure_tells_copies_from_different_images():
    real, other = faces()
    same = real[:1].repeat(4, 1, 1, 1)
    assert mean_pair_distance(same) == 0.0
    assert mean_pair_distance(real[:4]) > 0.2 * mean_pair_distance(other)


def test_evaluating_a_folder_says_what_is_missing(repo, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "recipes/evaluate_zoo.py", *args], cwd=repo,
                              capture_output=True, text=True, timeout=120)

    r = run("--path", str(tmp_path))
    assert r.returncode == 2 and "--only ddpm or --only sd" in r.stderr
    r = run("--only", "sd", "--path", str(tmp_path))
    assert r.returncode == 2 and "no model_index.json" in r.stderr and "--out" in r.stderr


def test_diagnose_ddpm_reads_the_zoo():
    from diagnose_ddpm import diagnose

    from course_utils.checkpoints import ZOO_DIR

    rows = diagnose(ZOO_DIR / "tiny-ddpm", n=8, timesteps=(999, 50))
    assert [r["t"] for r in rows] == [999, 50]
    assert rows[0]["sigma"] > 100 > rows[1]["sigma"]
    assert all(0 < r["mse"] < 2 and 0 < r["dc_mse"] <= r["mse"] for r in rows)
    assert 0.9 < rows[0]["slope"] < 1.1  # at t=999 the input is nearly all noise: the prediction follows it


def test_diagnose_ddpm_clip_report_follows_ddims_path():
    from diagnose_ddpm import clip_report

    from course_utils.checkpoints import ZOO_DIR

    r = clip_report(ZOO_DIR / "tiny-ddpm", n=8, steps=20)
    ts = [row["t"] for row in r["per_step"]]
    assert len(ts) == 20 and ts == sorted(ts, reverse=True) and ts[-1] == 0
    first, last = r["per_step"][0], r["per_step"][-1]
    # x0's error is the noise's error times sqrt((1 - abar) / abar): largest at the noisiest step
    assert first["out_of_range"] > last["out_of_range"] and first["mean_excess"] > 10 * last["mean_excess"], (first, last)
    assert set(r["nearest"]) == {f"DDIM {k}, clip_sample={c}" for k in (10, 20) for c in (True, False)}
    assert all(0 < v < 5 for v in r["nearest"].values())
