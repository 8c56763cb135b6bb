"""tools/hub_replica.py: replicas of the hub checkpoints, laid out as `make cache-hub` leaves the real ones (issue 11).

The replicas are built once into .cache/hub-replica (as `make hub-replica` does; a no-op when their stamps
match) and shared with the hub-mode runs of tests/test_notebooks.py. Loading checks run in a subprocess with
HF_HOME and HF_HUB_OFFLINE=1, because huggingface_hub reads them when it is imported.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import hub_replica
import pytest
from conftest import REPO
from hub_replica import REPLICAS, STAMP, build, git_blob_sha1, main, plan, repo_folder

REPLICA_HOME = REPO / ".cache" / "hub-replica"
SD = "CompVis/stable-diffusion-v1-4"
DDPM = "google/ddpm-cat-256"
V15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"


@pytest.fixture(scope="module")
def cache() -> Path:
    for repo_id in REPLICAS:
        build(repo_id, REPLICA_HOME / "hub", log=lambda *a: None)
    return REPLICA_HOME / "hub"


def snapshot(cache: Path, repo_id: str) -> Path:
    folder = repo_folder(cache, repo_id)
    return folder / "snapshots" / (folder / "refs" / "main").read_text()


def offline(code: str, home: Path = REPLICA_HOME, timeout: int = 300) -> str:
    """Run ``code`` in a fresh interpreter that sees only the replica cache, offline; returns its stdout."""
    env = dict(os.environ, HF_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    env.pop("HF_HUB_CACHE", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


# --- the command line -------------------------------------------------------------------------------------------

def test_help_describes_the_replicas(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "HF_HOME" in out and "random weights" in out and "--repo" in out


@pytest.mark.parametrize("argv, message", [
    (["--repo", "runwayml/stable-diffusion-v1-5"], "invalid choice"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--seed", "one"], "invalid int value"),
])
def test_bad_arguments_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_refuses_the_default_cache(monkeypatch, capsys):
    """Without HF_HOME the replicas would land in the real cache, where hub mode would load random weights."""
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    assert main(["--repo", DDPM]) == 2
    err = capsys.readouterr().err
    assert "HF_HOME is not set" in err and "HF_HOME=.cache/hub-replica" in err


def test_never_overwrites_a_real_snapshot(tmp_path, monkeypatch, capsys):
    real = tmp_path / "hub" / "models--google--ddpm-cat-256" / "snapshots" / ("a" * 40)
    real.mkdir(parents=True)
    (real / "model_index.json").write_text("{}")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    assert main(["--repo", DDPM]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (real / "model_index.json").read_text() == "{}"


def test_missing_configs_say_where_they_come_from(tmp_path, monkeypatch):
    monkeypatch.setattr(hub_replica, "CONFIGS", tmp_path / "nowhere")
    with pytest.raises(hub_replica.ReplicaError, match="hub-configs"):
        plan(DDPM, 0)


def test_committed_configs_are_the_shared_ones():
    """tools/hub_configs is a byte copy of the project's shared/hub-configs (the published files, with provenance)."""
    shared = hub_replica.SHARED_CONFIGS
    if not shared.is_dir():
        pytest.skip(f"{shared} is not beside this checkout (it is in the project's CI and developer machines)")
    want = sorted(p.relative_to(shared).as_posix() for p in shared.rglob("*") if p.is_file())
    have = sorted(p.relative_to(hub_replica.CONFIGS).as_posix() for p in hub_replica.CONFIGS.rglob("*") if p.is_file())
    assert have == want
    for rel in want:
        assert (hub_replica.CONFIGS / rel).read_bytes() == (shared / rel).read_bytes(), rel


# --- what is in the cache ---------------------------------------------------------------------------------------

def test_configs_are_the_published_ones(cache):
    """Byte for byte the committed published configs (v1-5 has v1-4's architecture and reuses its configs)."""
    for repo_id, (folder, files) in REPLICAS.items():
        snap = snapshot(cache, repo_id)
        for rel, source in files.items():
            kind, _, what = source.partition(":")
            if kind == "config":
                assert (snap / rel).read_bytes() == (hub_replica.CONFIGS / folder / what).read_bytes(), (repo_id, rel)
            elif kind == "tokenizer":
                assert (snap / rel).read_bytes() == (hub_replica.TOKENIZER / what).read_bytes(), (repo_id, rel)


def test_files_are_what_cache_hub_downloads(cache):
    """cache_hub's patterns: json, txt and safetensors; no fp16 / non_ema variants, no .bin/.ckpt, no safety_checker/."""
    for repo_id in REPLICAS:
        snap = snapshot(cache, repo_id)
        files = sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file())
        assert files == sorted(REPLICAS[repo_id][1]), repo_id
        assert all(f.endswith((".json", ".txt", ".safetensors")) for f in files)
        assert not any("fp16" in f or "non_ema" in f or f.startswith("safety_checker/") for f in files)
    index = json.loads((snapshot(cache, SD) / "model_index.json").read_text())
    assert index["safety_checker"] == ["stable_diffusion", "StableDiffusionSafetyChecker"]  # listed, not downloaded
    assert index["feature_extractor"] == ["transformers", "CLIPImageProcessor"]


def test_cache_layout_is_huggingface_hubs(cache):
    """models--org--name/{blobs, refs/main, snapshots/<commit>}; snapshot files link to blobs named by their hub id."""
    for repo_id in REPLICAS:
        folder = repo_folder(cache, repo_id)
        commit = (folder / "refs" / "main").read_text()
        assert len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)
        assert [p.name for p in (folder / "snapshots").iterdir()] == [commit]
        for f in (folder / "snapshots" / commit).rglob("*"):
            if f.is_file():
                assert f.is_symlink() and f.resolve().parent == (folder / "blobs").resolve()
                if f.suffix == ".json" or f.suffix == ".txt":
                    assert f.resolve().name == git_blob_sha1(f.read_bytes())  # a regular file's id: its git sha1
        stamp = json.loads((folder / STAMP).read_text())
        assert stamp["commit"] == commit and stamp["repo_id"] == repo_id
    ddpm_weights = snapshot(cache, DDPM) / "diffusion_pytorch_model.safetensors"  # an LFS file's id: its sha256
    assert ddpm_weights.resolve().name == hashlib.sha256(ddpm_weights.read_bytes()).hexdigest()


def test_v1_5_shares_v1_4s_weights_on_disk(cache):
    a = (snapshot(cache, SD) / "unet" / "diffusion_pytorch_model.safetensors").resolve()
    b = (snapshot(cache, V15) / "unet" / "diffusion_pytorch_model.safetensors").resolve()
    assert a.name == b.name and a.stat().st_size > 3e9
    assert snapshot(cache, SD).name != snapshot(cache, V15).name  # two repos, two commits


def test_a_matching_stamp_skips_the_build(cache):
    folder = repo_folder(cache, SD)
    blob = (snapshot(cache, SD) / "unet" / "diffusion_pytorch_model.safetensors").resolve()
    before = blob.stat().st_mtime_ns
    messages = []
    build(SD, cache, log=messages.append)
    assert messages == [f"{SD}: replica up to date in {folder}"]
    assert blob.stat().st_mtime_ns == before


def test_same_seed_same_weights_other_seed_other_weights(cache, tmp_path):
    want = (snapshot(cache, DDPM) / "diffusion_pytorch_model.safetensors").resolve().name
    again = build(DDPM, tmp_path / "hub", seed=0, log=lambda *a: None)
    assert again["files"]["diffusion_pytorch_model.safetensors"]["blob"] == want
    other = build(DDPM, tmp_path / "hub", seed=1, log=lambda *a: None)  # a changed stamp rebuilds, and cleans up
    assert other["files"]["diffusion_pytorch_model.safetensors"]["blob"] != want
    folder = repo_folder(tmp_path / "hub", DDPM)
    assert len(list((folder / "snapshots").iterdir())) == 1 and len(list((folder / "blobs").iterdir())) == 4


# --- loading them, offline, as hub mode does --------------------------------------------------------------------

def test_huggingface_hub_resolves_them_offline(cache):
    out = offline(f"""
import json
from huggingface_hub import scan_cache_dir, snapshot_download, try_to_load_from_cache
for r in {list(REPLICAS)!r}:
    print(json.dumps([snapshot_download(r, local_files_only=True), try_to_load_from_cache(r, "model_index.json")]))
print(json.dumps([len(scan_cache_dir().repos), [str(w) for w in scan_cache_dir().warnings]]))
""")
    lines = [json.loads(line) for line in out.splitlines()]
    for (snap, index), repo_id in zip(lines[:-1], REPLICAS, strict=True):
        assert Path(snap) == snapshot(cache, repo_id) and Path(index) == snapshot(cache, repo_id) / "model_index.json"
    assert lines[-1] == [3, []]  # the stamp does not disturb huggingface_hub


def test_resolve_checkpoint_and_is_replica(cache):
    out = offline("""
import json
from course_utils import resolve_checkpoint
from course_utils.workload import is_replica
paths = {r: resolve_checkpoint(r, "hub", verbose=False) for r in ("google/ddpm-cat-256", "CompVis/stable-diffusion-v1-4")}
tiny = resolve_checkpoint("google/ddpm-cat-256", "tiny", verbose=False)
print(json.dumps({"paths": paths, "replica": [is_replica(p) for p in paths.values()],
                  "tiny": is_replica(tiny), "id": is_replica("google/ddpm-cat-256")}))
""")
    got = json.loads(out.splitlines()[-1])
    assert got["paths"] == {r: str(snapshot(cache, r)) for r in (DDPM, SD)}
    assert got["replica"] == [True, True] and got["tiny"] is False and got["id"] is False


def test_pipelines_load_with_the_real_architectures(cache):
    """from_pretrained(repo_id) offline, as the notebooks do (safety_checker=None); the published sizes."""
    out = offline("""
import json, torch
from diffusers import DDPMPipeline, StableDiffusionPipeline
ddpm = DDPMPipeline.from_pretrained("google/ddpm-cat-256")
sd = StableDiffusionPipeline.from_pretrained("CompVis/stable-diffusion-v1-4", safety_checker=None, requires_safety_checker=False)
n = lambda m: sum(p.numel() for p in m.parameters())
ids = sd.tokenizer("a photograph of an astronaut riding a horse").input_ids
try:
    StableDiffusionPipeline.from_pretrained("CompVis/stable-diffusion-v1-4")
    without = "loaded"
except (OSError, ValueError) as e:
    without = type(e).__name__
print(json.dumps({"ddpm": [type(ddpm.unet).__name__, ddpm.unet.config.sample_size, n(ddpm.unet),
                           type(ddpm.scheduler).__name__, ddpm.scheduler.config.num_train_timesteps],
                  "sd": {k: [type(v).__name__, n(v)] for k, v in (("unet", sd.unet), ("vae", sd.vae), ("text", sd.text_encoder))},
                  "sample_size": sd.unet.config.sample_size, "hidden": sd.text_encoder.config.hidden_size,
                  "scheduler": [type(sd.scheduler).__name__, sd.scheduler.config.steps_offset, sd.scheduler.config.set_alpha_to_one],
                  "scaling": sd.vae.config.scaling_factor, "max_len": sd.tokenizer.model_max_length, "ids": ids,
                  "feature_extractor": type(sd.feature_extractor).__name__, "safety_checker": sd.safety_checker,
                  "without": without}))
""")
    got = json.loads(out.splitlines()[-1])
    assert got["ddpm"][:2] == ["UNet2DModel", 256] and got["ddpm"][3:] == ["DDPMScheduler", 1000]
    assert got["sd"]["unet"] == ["UNet2DConditionModel", 859520964]
    assert got["sd"]["vae"] == ["AutoencoderKL", 83653863]
    assert got["sd"]["text"] == ["CLIPTextModel", 123060480]
    assert got["sample_size"] == 64 and got["hidden"] == 768 and got["scaling"] == 0.18215
    assert got["scheduler"] == ["PNDMScheduler", 1, False]
    assert got["max_len"] == 77 and got["ids"] == [49406, 320, 8853, 539, 550, 18376, 6765, 320, 4558, 49407]
    assert got["feature_extractor"].startswith("CLIPImageProcessor") and got["safety_checker"] is None
    assert got["without"] == "OSError"  # safety_checker/ is not cached, as with `make cache-hub`: pass safety_checker=None


# --- make test-gpu's recording path, on a CPU (no GPU here: peak memory is n/a) -------------------------------------

def test_gpu_results_and_readme_column(cache, tmp_path, monkeypatch):
    """tools/gpu_notebooks.py on notebook 00 with the CPU: the results file, then the README's GPU column from it."""
    import gpu_notebooks

    monkeypatch.setenv("HF_HOME", str(REPLICA_HOME))  # restored after the test (use_checkpoints sets it for kernels)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    readme = tmp_path / "README.md"
    readme.write_text((REPO / "README.md").read_text())
    results = tmp_path / "gpu-notebooks.json"
    assert gpu_notebooks.main(["00", "--device", "cpu", "--fast", "--checkpoints", "replicas",
                               "--results", str(results), "--readme-file", str(readme)]) == 0
    got = json.loads(results.read_text())
    assert got["device"] == "cpu" and got["mode"] == "hub" and got["fast"] is True and "replicas" in got["checkpoints"]
    row = got["notebooks"]["00_setup"]
    assert row["status"] == "passed" and row["peak_bytes"] is None and row["seconds"] > 0
    text = readme.read_text()
    table = [line for line in text.splitlines() if re.match(r"\| \d\d \|", line)]
    assert len(table) >= 10 and table[0].startswith("| 00 |")
    assert table[0].endswith(f"| {row['seconds']:.1f} s, n/a |")
    assert all(line.endswith("| not measured |") for line in table[1:])
    assert text.count("<!-- gpu-note:start -->") == 1 and "the fast workload" in text
    # the generator alone is idempotent, and without results it says so
    assert gpu_notebooks.main(["--readme", "--results", str(results), "--readme-file", str(readme)]) == 0
    assert readme.read_text() == text
    assert gpu_notebooks.main(["--readme", "--results", str(tmp_path / "none.json"), "--readme-file", str(readme)]) == 0
    assert "no GPU run of the notebooks has been committed yet" in readme.read_text()
    assert readme.read_text().count("<!-- gpu-note:start -->") == 1


def test_gpu_readme_marks_failures():
    import gpu_notebooks

    text = (REPO / "README.md").read_text()
    results = {"machine": "Tesla T4", "date": "2026-11-26", "checkpoints": "replicas", "dtype": "float16", "fast": False,
               "notebooks": {"01_pipeline_in_four_lines": {"seconds": 12.0, "peak_bytes": 3 * 2**30, "status": "passed"},
                             "05_sd_from_components": {"seconds": 40.0, "peak_bytes": None, "status": "failed: x"}}}
    out = gpu_notebooks.readme_text(text, results)
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if re.match(r"\| \d\d \|", line)}
    assert rows["01"].endswith("| 12.0 s, 3.00 GiB |") and rows["05"].endswith("| failed |")
    assert rows["00"].endswith("| not measured |")
    assert "Tesla T4" in out and "highest peak 3.00 GiB" in out
