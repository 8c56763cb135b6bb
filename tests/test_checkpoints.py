import shutil
import socket
import threading
import time

import pytest

import course_utils.checkpoints as ck
from course_utils import CheckpointError, resolve_checkpoint, verify_checkpoint


def test_tiny_mode_maps_every_known_id():
    for hub_id, name in ck.TINY_STAND_INS.items():
        path = resolve_checkpoint(hub_id, "tiny", verbose=False)
        assert path.endswith(name) and (ck.ZOO_DIR / name / "model_index.json").exists()


def test_unknown_id_in_tiny_mode_lists_known_ids():
    with pytest.raises(CheckpointError) as e:
        resolve_checkpoint("someone/else", "tiny", verbose=False)
    for hub_id in ck.TINY_STAND_INS:
        assert hub_id in str(e.value)


def test_bad_mode_is_refused():
    with pytest.raises(ValueError, match="mode must be one of"):
        resolve_checkpoint("google/ddpm-cat-256", "fast")


def test_auto_mode_without_gpu_is_tiny_and_says_why(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: auto mode depends on the hub here")
    path = resolve_checkpoint("google/ddpm-cat-256", "auto")
    out = capsys.readouterr().out.strip().splitlines()
    assert path.endswith("tiny-ddpm")
    assert len(out) == 1 and out[0].startswith("tiny mode") and "no GPU" in out[0]


def test_hub_mode_offline_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="mode='tiny'"):
        resolve_checkpoint("CompVis/stable-diffusion-v1-4", "hub", verbose=False)
    assert time.perf_counter() - t0 < 5


def test_hub_mode_maps_deleted_id_with_warning(monkeypatch):
    monkeypatch.setattr(ck, "hub_reachable", lambda timeout=3.0: True)  # pretend to be online
    with pytest.warns(UserWarning, match="deleted"):
        live = resolve_checkpoint("runwayml/stable-diffusion-v1-5", "hub", verbose=False)
    assert live == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert resolve_checkpoint("google/ddpm-cat-256", "hub", verbose=False) == "google/ddpm-cat-256"


def test_hub_check_never_hangs_on_a_silent_server(monkeypatch):
    """A server that accepts the connection and never answers: the check gives up within its timeout."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    held = []
    threading.Thread(target=lambda: held.append(srv.accept()), daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{srv.getsockname()[1]}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    t0 = time.perf_counter()
    assert ck.hub_reachable(timeout=1.0) is False
    assert time.perf_counter() - t0 < 2.0
    srv.close()


def test_hub_check_refused_port_is_quick(monkeypatch):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    t0 = time.perf_counter()
    assert ck.hub_reachable() is False
    assert time.perf_counter() - t0 < 3.5


def test_manifest_covers_every_weight_and_verifies():
    entries = ck.read_manifest()
    weights = {p.relative_to(ck.ZOO_DIR).as_posix() for p in ck.ZOO_DIR.rglob("*.safetensors")}
    assert weights <= set(entries)
    verify_checkpoint("tiny-ddpm")
    verify_checkpoint("tiny-sd")


@pytest.fixture
def zoo_copy(tmp_path, monkeypatch):
    zoo = tmp_path / "zoo"
    shutil.copytree(ck.ZOO_DIR, zoo)
    monkeypatch.setattr(ck, "ZOO_DIR", zoo)
    monkeypatch.setattr(ck, "MANIFEST", zoo / "MANIFEST.sha256")
    return zoo


def test_corrupted_weight_names_file_and_rebuild_command(zoo_copy):
    f = zoo_copy / "tiny-sd" / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as e:
        resolve_checkpoint("CompVis/stable-diffusion-v1-4", "tiny", verbose=False)
    msg = str(e.value)
    assert "diffusion_pytorch_model.safetensors" in msg and "corrupted" in msg
    assert "recipes/train_tiny_sd.py" in msg


def test_missing_weight_names_file_and_rebuild_command(zoo_copy):
    (zoo_copy / "tiny-ddpm" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(CheckpointError) as e:
        resolve_checkpoint("google/ddpm-cat-256", "tiny", verbose=False)
    assert "missing" in str(e.value) and "recipes/train_tiny_ddpm.py" in str(e.value)


def test_works_from_an_installed_package(tmp_path, repo):
    """Build a wheel, install it into a separate folder and resolve from there (not from the checkout)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(tmp_path / "dist"), str(repo)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-1000:]
    wheel = next((tmp_path / "dist").glob("*.whl"))
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                        str(tmp_path / "site"), str(wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-1000:]
    code = ("import course_utils; from course_utils import resolve_checkpoint;"
            "p = resolve_checkpoint('CompVis/stable-diffusion-v1-4', 'tiny', verbose=False);"
            "print(course_utils.__file__); print(p)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-1000:]
    module_file, path = r.stdout.split()
    assert module_file.startswith(str(tmp_path / "site")) and path.startswith(str(tmp_path / "site"))
