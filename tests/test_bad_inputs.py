"""Bad and unusual inputs, table by table: every case fails fast, with the right exception and a message that
names the fix (issue 14: no silent garbage, no hangs, no checks that can be talked out of).

Two tables:
- ``RAISES``: a call that must raise ``exc``, whose message contains ``fix`` (a regular expression) and never
  ``forbid``, within ``limit`` seconds. Models (the real tiny zoo, no mocks) are loaded once per module, before
  the clock starts, so the limit measures the failing call alone.
- ``OUTCOMES``: scripts and behaviours that report instead of raising (exit statuses, printed messages, the
  explorer's status line, a notebook run): ``run`` returns ``(status, text)``; both are checked, with a limit.

The emoji cache's cases live in the emoji-data tests (another table owns them). The README's "Reliability"
section counts these cases by class (``CLASS_COUNTS`` below prints them: ``python tests/test_bad_inputs.py``).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import course_utils.checkpoints as ck
from course_utils import CheckpointError, DeviceError
from course_utils.device import check_image_size, make_generator, pick_device, pick_dtype

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
HAS_CUDA = torch.cuda.is_available()
#: a CUDA device this machine cannot use (no GPU: any; with GPUs: one index too many)
BAD_CUDA = f"cuda:{torch.cuda.device_count()}" if HAS_CUDA else "cuda"
#: what a message about it must advise
CUDA_FIX = r"device='auto'|device='cpu'|use 'cuda:0'"
#: what the integrity errors must never advise: regenerating the manifest would bless the damage
NO_REBLESS = r"make_manifest|make manifest"


# ---------------------------------------------------------------------------------------------------------------
# Shared context: real models (loaded once), a zoo copy to damage, a server that accepts and never answers.


class Silent:
    """A TCP server on 127.0.0.1 that accepts connections and never answers; it stops itself after ``life_s``."""

    def __init__(self, life_s: float = 600.0):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.5)
        self.held: list = []
        self.stop_at = time.monotonic() + life_s
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.n = 0

    def _serve(self) -> None:
        while time.monotonic() < self.stop_at:
            try:
                self.held.append(self.sock.accept()[0])  # keep it open, say nothing
            except OSError:
                if self.sock.fileno() == -1:
                    return
        self.close()

    def url(self) -> str:
        """A fresh endpoint each call (same server), so a remembered hub answer never leaks between cases."""
        self.n += 1
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/case{self.n}"

    def close(self) -> None:
        for c in self.held:
            c.close()
        self.sock.close()


class Ctx:
    def __init__(self, tmp: Path, monkeypatch, models: dict, silent: Silent):
        self.tmp, self.mp, self.models, self.silent = tmp, monkeypatch, models, silent

    @property
    def sd(self):
        return self.models["sd"]

    @property
    def ddpm(self):
        return self.models["ddpm"]

    def zoo(self) -> Path:
        """A private copy of the zoo that the case may damage; course_utils looks there instead."""
        zoo = self.tmp / "zoo"
        if not zoo.exists():
            shutil.copytree(ck.ZOO_DIR, zoo)
            if (ck.ZOO_DIR.parent / "data").is_dir():  # package data the manifest lists as ../data/<file>
                shutil.copytree(ck.ZOO_DIR.parent / "data", self.tmp / "data")
            self.mp.setattr(ck, "ZOO_DIR", zoo)
            self.mp.setattr(ck, "MANIFEST", zoo / "MANIFEST.sha256")
        return zoo

    def offline_endpoint(self) -> str:
        url = self.silent.url()
        self.mp.setenv("HF_ENDPOINT", url)
        self.mp.delenv("HF_HUB_OFFLINE", raising=False)
        return url


def _load_models() -> dict:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel, UNet2DModel, UniPCMultistepScheduler
    from transformers import CLIPTextModel, CLIPTokenizer

    sd = ck.resolve_checkpoint("CompVis/stable-diffusion-v1-4", "tiny", verbose=False)
    ddpm = ck.resolve_checkpoint("google/ddpm-cat-256", "tiny", verbose=False)
    return {
        "sd": dict(vae=AutoencoderKL.from_pretrained(sd, subfolder="vae"),
                   tokenizer=CLIPTokenizer.from_pretrained(sd, subfolder="tokenizer"),
                   text_encoder=CLIPTextModel.from_pretrained(sd, subfolder="text_encoder"),
                   unet=UNet2DConditionModel.from_pretrained(sd, subfolder="unet"),
                   scheduler=UniPCMultistepScheduler.from_pretrained(sd, subfolder="scheduler")),
        "ddpm": dict(unet=UNet2DModel.from_pretrained(ddpm), scheduler=DDPMScheduler.from_pretrained(ddpm)),
    }


@pytest.fixture(scope="module")
def models() -> dict:
    return _load_models()


@pytest.fixture(scope="module")
def silent():
    s = Silent()
    yield s
    s.close()


@pytest.fixture
def ctx(tmp_path, monkeypatch, models, silent):
    ck.reset_hub_probe()
    yield Ctx(tmp_path, monkeypatch, models, silent)
    ck.reset_hub_probe()


# ---------------------------------------------------------------------------------------------------------------
# The calls the cases make.


def sd(c: Ctx, prompts=("cat face",), **kw):
    from course_utils.handwritten import sd_generate

    kw.setdefault("num_inference_steps", 2)
    return sd_generate(prompts=list(prompts) if isinstance(prompts, tuple) else prompts, **c.sd, **kw)


def ddpm(c: Ctx, **kw):
    from course_utils.handwritten import ddpm_generate

    kw.setdefault("num_inference_steps", 2)
    return ddpm_generate(**c.ddpm, **kw)


def damage(c: Ctx, manifest: str | bytes | None = None, corrupt: str | None = None, drop: str | None = None,
           remove: str | None = None) -> Path:
    """Damage the zoo copy: rewrite the manifest, flip a byte in a file, drop a manifest line, delete a file."""
    zoo = c.zoo()
    m = zoo / "MANIFEST.sha256"
    if corrupt:
        f = zoo / corrupt
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0xFF
        f.write_bytes(bytes(data))
    if drop:
        m.write_text("".join(line for line in m.read_text().splitlines(True) if not line.rstrip().endswith(drop)))
    if remove:
        (zoo / remove).unlink()
    if manifest is not None:
        if manifest == "MISSING":
            m.unlink()
        elif isinstance(manifest, bytes):
            m.write_bytes(manifest)
        else:
            m.write_text(manifest)
    return zoo


def truncated_manifest(c: Ctx) -> str:
    text = (ck.ZOO_DIR / "MANIFEST.sha256").read_text()
    return text[: len(text) // 3]


def live_explorer(c: Ctx, generate):
    """A live (widget) explorer whose ``generate`` misbehaves: return the status line and the kept exception."""
    from course_utils.explorer import explorer

    c.mp.setenv("COURSE_STATIC", "0")
    box = explorer(generate, ["UniPC"], steps=5)
    status = box.children[-1].value
    assert "generated in" not in status, f"a failed render must not show a time as if it worked: {status!r}"
    if box.error is None:
        raise AssertionError(f"the explorer kept no error; its status says {status!r}")
    raise type(box.error)(f"{status} | {box.error}")


def failing_generate(*_):
    def deep_inside_the_model():
        raise RuntimeError("the UNet expected 4 channels: pass latents, not an image")

    deep_inside_the_model()


def hub_probe_twice(c: Ctx) -> tuple[int, str]:
    """The probe waits once (its timeout), then remembers: asking again costs nothing."""
    c.offline_endpoint()
    t0 = time.perf_counter()
    first = ck.hub_reachable(timeout=1.0)
    t1 = time.perf_counter()
    second = ck.hub_reachable(timeout=1.0)
    t2 = time.perf_counter()
    fast = t2 - t1 < 0.05
    return (0 if fast and not first and not second else 1,
            f"answers {first}, {second}; first in {t1 - t0:.2f} s, second in {t2 - t1:.4f} s"
            + (" (remembered)" if fast else " (asked again)"))


def package_data(c: Ctx, corrupt: bool = False) -> None:
    """A data file beside the zoo, listed in its manifest as ../data/<file>, checked with verify_data."""
    zoo = c.zoo()
    data = zoo.parent / "data"
    data.mkdir(exist_ok=True)
    (data / "test-captions.txt").write_text("cat face\n")
    digest = hashlib.sha256(b"cat face\n").hexdigest()
    with open(zoo / "MANIFEST.sha256", "a") as f:
        f.write(f"{digest}  ../data/test-captions.txt\n")
    if corrupt:
        (data / "test-captions.txt").write_text("dog face\n")


# ---------------------------------------------------------------------------------------------------------------
# Table 1: calls that must raise.


@dataclass
class Raises:
    id: str
    cls: str  # the class this case belongs to
    call: Callable[[Ctx], object]
    exc: type | tuple
    fix: str  # regular expression the message must contain: what to do
    limit: float = 2.0  # seconds
    forbid: str | None = None  # regular expression the message must NOT contain


SILENT, HANG, INTEGRITY, TEACH, HELPERS = ("silent wrong results", "hangs", "integrity", "raw library errors",
                                           "other helpers")
NAN = float("nan")
INF = float("inf")

RAISES = [
    # --- silent wrong results: sd_generate --------------------------------------------------------------------
    Raises("sd-size-zero", SILENT, lambda c: sd(c, height=0, width=0), ValueError, r"positive size.*multiple of 8"),
    Raises("sd-size-negative", SILENT, lambda c: sd(c, height=-64), ValueError, r"positive size"),
    Raises("sd-width-negative", SILENT, lambda c: sd(c, width=-8), ValueError, r"positive size"),
    Raises("sd-size-float", SILENT, lambda c: sd(c, height=64.0, width=64), TypeError, r"Use 64"),
    Raises("sd-size-float-fraction", SILENT, lambda c: sd(c, width=63.5), TypeError, r"whole number of pixels"),
    Raises("sd-size-string", SILENT, lambda c: sd(c, height="64"), TypeError, r"whole number of pixels"),
    Raises("sd-size-bool", SILENT, lambda c: sd(c, height=True), TypeError, r"whole number of pixels"),
    Raises("sd-size-not-multiple", SILENT, lambda c: sd(c, width=63), ValueError, r"Use 56 or 64"),
    Raises("sd-size-tiny", SILENT, lambda c: sd(c, height=4), ValueError, r"Use 8"),
    Raises("sd-steps-negative", SILENT, lambda c: sd(c, num_inference_steps=-1), ValueError, r"at least 1 step"),
    Raises("sd-steps-zero", SILENT, lambda c: sd(c, num_inference_steps=0), ValueError, r"25-50"),
    Raises("sd-steps-float", SILENT, lambda c: sd(c, num_inference_steps=2.5), TypeError, r"whole number"),
    Raises("sd-steps-string", SILENT, lambda c: sd(c, num_inference_steps="25"), TypeError, r"whole number"),
    Raises("sd-steps-too-many", SILENT, lambda c: sd(c, num_inference_steps=5000), ValueError, r"at most 1000"),
    Raises("sd-guidance-nan", SILENT, lambda c: sd(c, guidance_scale=NAN), ValueError, r"finite.*7\.5"),
    Raises("sd-guidance-inf", SILENT, lambda c: sd(c, guidance_scale=INF), ValueError, r"finite.*Use 1"),
    Raises("sd-guidance-minus-inf", SILENT, lambda c: sd(c, guidance_scale=-INF), ValueError, r"finite"),
    Raises("sd-guidance-negative", SILENT, lambda c: sd(c, guidance_scale=-3), ValueError, r"Use 1 to switch"),
    Raises("sd-guidance-half", SILENT, lambda c: sd(c, guidance_scale=0.5), ValueError, r"below 1"),
    Raises("sd-guidance-string", SILENT, lambda c: sd(c, guidance_scale="7.5"), TypeError, r"number such as 7\.5"),
    Raises("sd-guidance-overflow-nan-image", SILENT, lambda c: sd(c, guidance_scale=1e38), FloatingPointError,
           r"NaN or infinite.*guidance_scale.*5-10", limit=20.0),
    Raises("sd-output-type-unknown", SILENT, lambda c: sd(c, output_type="jpg"), ValueError, r"'np'.*'pil'"),
    Raises("sd-output-type-latent", SILENT, lambda c: sd(c, output_type="latent"), ValueError, r"not one of"),
    # --- silent wrong results: ddpm_generate ------------------------------------------------------------------
    Raises("ddpm-batch-zero", SILENT, lambda c: ddpm(c, batch_size=0), ValueError, r"at least 1"),
    Raises("ddpm-batch-negative", SILENT, lambda c: ddpm(c, batch_size=-2), ValueError, r"at least 1"),
    Raises("ddpm-batch-float", SILENT, lambda c: ddpm(c, batch_size=2.0), TypeError, r"use 2"),
    Raises("ddpm-steps-zero", SILENT, lambda c: ddpm(c, num_inference_steps=0), ValueError, r"at least 1 step"),
    Raises("ddpm-steps-negative", SILENT, lambda c: ddpm(c, num_inference_steps=-5), ValueError, r"at least 1 step"),
    Raises("ddpm-steps-none", SILENT, lambda c: ddpm(c, num_inference_steps=None), TypeError, r"whole number"),
    Raises("ddpm-size-not-multiple", SILENT, lambda c: ddpm(c, height=30), ValueError, r"Use 28 or 32"),
    Raises("ddpm-output-type-case", SILENT, lambda c: ddpm(c, output_type="PIL"), ValueError, r"'pil'"),
    Raises("ddpm-generator-seed", SILENT, lambda c: ddpm(c, generator=0), TypeError, r"make_generator"),
    # --- hangs, or what looks like one ------------------------------------------------------------------------
    Raises("sd-4096px-on-cpu", HANG, lambda c: sd(c, height=4096, width=4096), ValueError,
           r"GB.*refused.*at most 256 px", limit=1.0),
    Raises("sd-1024px-wide-on-cpu", HANG, lambda c: sd(c, height=64, width=1024), ValueError, r"at most 256 px",
           limit=1.0),
    Raises("ddpm-4096px-on-cpu", HANG, lambda c: ddpm(c, height=4096, width=4096), ValueError, r"at most 128 px",
           limit=1.0),
    Raises("size-check-8192-on-512-model", HANG, lambda c: check_image_size(8192, 8192, native=512, device="cpu"),
           ValueError, r"at most 2048 px", limit=1.0),
    Raises("hub-mode-silent-server-not-cached", HANG,
           lambda c: (c.offline_endpoint(), ck.resolve_checkpoint("google/ddpm-cat-256", "hub", verbose=False)),
           CheckpointError, r"mode='tiny'.*make cache-hub", limit=4.0),
    Raises("hub-mode-offline-env", HANG,
           lambda c: (c.mp.setenv("HF_HUB_OFFLINE", "1"),
                      ck.resolve_checkpoint("CompVis/stable-diffusion-v1-4", "hub", verbose=False)),
           CheckpointError, r"mode='tiny'", limit=1.0),
    # --- integrity that cannot be argued with -----------------------------------------------------------------
    Raises("verify-unknown-name", INTEGRITY, lambda c: ck.verify_checkpoint("tiny-bogus"), CheckpointError,
           r"tiny-ddpm, tiny-sd"),
    Raises("verify-empty-name", INTEGRITY, lambda c: ck.verify_checkpoint(""), CheckpointError, r"resolve_checkpoint"),
    Raises("verify-hub-id-as-name", INTEGRITY, lambda c: ck.verify_checkpoint("google/ddpm-cat-256"),
           CheckpointError, r"the zoo has tiny-ddpm"),
    Raises("manifest-empty-corrupt-unet", INTEGRITY,
           lambda c: (damage(c, manifest="", corrupt="tiny-sd/unet/diffusion_pytorch_model.safetensors"),
                      ck.resolve_checkpoint("CompVis/stable-diffusion-v1-4", "tiny", verbose=False)),
           CheckpointError, r"empty.*git checkout", forbid=NO_REBLESS),
    Raises("manifest-blank-lines-only", INTEGRITY, lambda c: (damage(c, manifest="\n\n  \n"),
                                                              ck.verify_checkpoint("tiny-ddpm")),
           CheckpointError, r"empty.*reinstall", forbid=NO_REBLESS),
    Raises("manifest-truncated", INTEGRITY, lambda c: (damage(c, manifest=truncated_manifest(c)),
                                                       ck.verify_checkpoint("tiny-sd")),
           CheckpointError, r"git checkout|reinstall", forbid=NO_REBLESS),
    Raises("manifest-garbage-bytes", INTEGRITY, lambda c: (damage(c, manifest=b"\xff\xfe\x00garbage"),
                                                           ck.verify_checkpoint("tiny-ddpm")),
           CheckpointError, r"reinstall", forbid=NO_REBLESS),
    Raises("manifest-bad-digest", INTEGRITY, lambda c: (damage(c, manifest="abc123  tiny-ddpm/config.json\n"),
                                                        ck.verify_checkpoint("tiny-ddpm")),
           CheckpointError, r"damaged: line 1.*git checkout", forbid=NO_REBLESS),
    Raises("manifest-missing", INTEGRITY, lambda c: (damage(c, manifest="MISSING"), ck.verify_checkpoint("tiny-sd")),
           CheckpointError, r"missing.*reinstall", forbid=NO_REBLESS),
    Raises("manifest-drops-corrupt-unet", INTEGRITY,
           lambda c: (damage(c, corrupt="tiny-sd/unet/diffusion_pytorch_model.safetensors",
                             drop="tiny-sd/unet/diffusion_pytorch_model.safetensors"),
                      ck.verify_checkpoint("tiny-sd")),
           CheckpointError, r"no entry for tiny-sd/unet/diffusion_pytorch_model\.safetensors.*git checkout",
           forbid=NO_REBLESS),
    Raises("manifest-drops-config", INTEGRITY,
           lambda c: (damage(c, drop="tiny-ddpm/scheduler_config.json"), ck.verify_checkpoint("tiny-ddpm")),
           CheckpointError, r"no entry for tiny-ddpm/scheduler_config\.json", forbid=NO_REBLESS),
    Raises("manifest-duplicate-line", INTEGRITY,
           lambda c: (damage(c, manifest=(ck.ZOO_DIR / "MANIFEST.sha256").read_text() * 2),
                      ck.verify_checkpoint("tiny-ddpm")),
           CheckpointError, r"listed twice.*git checkout", forbid=NO_REBLESS),
    Raises("manifest-escapes-package", INTEGRITY,
           lambda c: (damage(c, manifest=(ck.ZOO_DIR / "MANIFEST.sha256").read_text()
                             + "0" * 64 + "  tiny-ddpm/../../../etc/passwd\n"), ck.verify_checkpoint("tiny-ddpm")),
           CheckpointError, r"outside the course_utils package", forbid=NO_REBLESS),
    Raises("weight-corrupted", INTEGRITY,
           lambda c: (damage(c, corrupt="tiny-sd/vae/diffusion_pytorch_model.safetensors"),
                      ck.verify_checkpoint("tiny-sd")),
           CheckpointError, r"corrupted.*git checkout.*recipes/train_tiny_sd\.py", forbid=NO_REBLESS),
    Raises("tokenizer-corrupted", INTEGRITY,
           lambda c: (damage(c, corrupt="tiny-sd/tokenizer/vocab.json"),
                      ck.resolve_checkpoint("CompVis/stable-diffusion-v1-4", "tiny", verbose=False)),
           CheckpointError, r"vocab\.json is corrupted", forbid=NO_REBLESS),
    Raises("weight-missing", INTEGRITY,
           lambda c: (damage(c, remove="tiny-ddpm/diffusion_pytorch_model.safetensors"),
                      ck.resolve_checkpoint("google/ddpm-cat-256", "tiny", verbose=False)),
           CheckpointError, r"missing.*recipes/train_tiny_ddpm\.py", forbid=NO_REBLESS),
    Raises("verify-data-unlisted-prefix", INTEGRITY, lambda c: ck.verify_data("no-such-data"), CheckpointError,
           r"lists nothing under"),
    Raises("verify-data-expected-missing", INTEGRITY,
           lambda c: (package_data(c), ck.verify_data("../data", expected=["emoji-32px.npz"])), CheckpointError,
           r"no entry for \.\./data/emoji-32px\.npz.*reinstall"),
    Raises("verify-data-corrupted", INTEGRITY, lambda c: (package_data(c, corrupt=True), ck.verify_data("../data")),
           CheckpointError, r"test-captions\.txt is corrupted.*git checkout -- course_utils/data/test-captions\.txt",
           forbid=NO_REBLESS),
    # --- raw library errors -> teaching errors: devices, seeds, dtypes ----------------------------------------
    Raises("generator-cuda-without-gpu", TEACH, lambda c: make_generator(BAD_CUDA, 0), DeviceError, CUDA_FIX),
    Raises("generator-seed-2-64", TEACH, lambda c: make_generator("cpu", 2**64), ValueError, r"2\*\*64 - 1"),
    Raises("generator-seed-huge", TEACH, lambda c: make_generator("cpu", 10**30), ValueError, r"seed % 2\*\*64"),
    Raises("generator-seed-negative", TEACH, lambda c: make_generator("cpu", -1), ValueError, r"non-negative"),
    Raises("generator-seed-string", TEACH, lambda c: make_generator("cpu", "42"), TypeError, r"int\('42'\)"),
    Raises("generator-seed-float", TEACH, lambda c: make_generator("cpu", 1.5), TypeError, r"whole number"),
    Raises("generator-seed-bool", TEACH, lambda c: make_generator("cpu", True), TypeError, r"such as 0 or 1234"),
    Raises("generator-seed-none", TEACH, lambda c: make_generator("cpu", None), TypeError, r"whole number"),
    Raises("generator-device-gpu", TEACH, lambda c: make_generator("gpu", 0), DeviceError, r"use 'auto', 'cpu'"),
    Raises("device-upper-case", TEACH, lambda c: pick_device("CUDA"), DeviceError, r"lower case"),
    Raises("device-int", TEACH, lambda c: pick_device(0), TypeError, r"string such as 'auto'"),
    Raises("device-bad-index", TEACH, lambda c: pick_device("cuda:x"), DeviceError, r"'cuda:0'"),
    Raises("device-empty", TEACH, lambda c: pick_device(""), DeviceError, r"use 'auto'"),
    Raises("device-cuda-without-gpu", TEACH, lambda c: pick_device(BAD_CUDA), DeviceError, CUDA_FIX),
    Raises("dtype-fp16-on-cpu", TEACH, lambda c: pick_dtype("cpu", half=True), DeviceError, r"float32 on the CPU"),
    Raises("dtype-half-string", TEACH, lambda c: pick_dtype("cpu", half="yes"), TypeError, r"True or False"),
    Raises("sd-device-cuda-without-gpu", TEACH, lambda c: sd(c, device=BAD_CUDA), DeviceError, CUDA_FIX),
    Raises("sd-device-tpu", TEACH, lambda c: sd(c, device="tpu"), DeviceError, r"use 'auto'"),
    Raises("ddpm-device-cuda-without-gpu", TEACH, lambda c: ddpm(c, device=BAD_CUDA), DeviceError, CUDA_FIX),
    Raises("sd-generator-int", TEACH, lambda c: sd(c, generator=42), TypeError, r"make_generator\(device, seed\)"),
    # --- raw library errors -> teaching errors: arguments -----------------------------------------------------
    Raises("sd-prompt-none", TEACH, lambda c: sd(c, prompts=None), TypeError, r"string or a list of strings"),
    Raises("sd-prompt-int", TEACH, lambda c: sd(c, prompts=42), TypeError, r"'cat face'"),
    Raises("sd-prompt-empty-list", TEACH, lambda c: sd(c, prompts=[]), ValueError, r"at least one prompt"),
    Raises("sd-prompt-mixed", TEACH, lambda c: sd(c, prompts=["cat face", 3]), TypeError, r"Write it as text"),
    Raises("sd-prompt-bytes", TEACH, lambda c: sd(c, prompts=b"cat face"), TypeError, r"string or a list"),
    Raises("sd-negative-count", TEACH, lambda c: sd(c, prompts=["a", "b"], negative_prompts=["c"]), ValueError,
           r"one per prompt"),
    Raises("sd-negative-int", TEACH, lambda c: sd(c, negative_prompts=5), TypeError, r"negative_prompts must be"),
    Raises("explorer-static-callback-error", TEACH,
           lambda c: (c.mp.setenv("COURSE_STATIC", "1"),
                      __import__("course_utils.explorer").explorer.explorer(failing_generate, ["UniPC"])),
           RuntimeError, r"pass latents, not an image"),
    Raises("explorer-live-callback-error", TEACH, lambda c: live_explorer(c, failing_generate), RuntimeError,
           r"FAILED after .* s: RuntimeError: .*pass latents"),
    Raises("explorer-live-returns-none", TEACH, lambda c: live_explorer(c, lambda *a: None), TypeError,
           r"FAILED.*return pipe\(\.\.\.\)\.images\[0\]"),
    Raises("explorer-schedulers-string", TEACH,
           lambda c: __import__("course_utils.explorer").explorer.explorer(failing_generate, "UniPC"), TypeError,
           r"\['UniPC'\]"),
    Raises("explorer-steps-zero", TEACH,
           lambda c: __import__("course_utils.explorer").explorer.explorer(failing_generate, ["UniPC"], steps=0),
           ValueError, r"from 2 to 50"),
    Raises("explorer-not-callable", TEACH,
           lambda c: __import__("course_utils.explorer").explorer.explorer(None, ["UniPC"]), TypeError,
           r"the function that generates"),
    Raises("cache-hub-string-id", TEACH, lambda c: ck.cache_hub("google/ddpm-cat-256"), TypeError,
           r"cache_hub\(\['google/ddpm-cat-256'\]\)"),
    Raises("cache-hub-unknown-id", TEACH, lambda c: ck.cache_hub(["someone/else"]), CheckpointError, r"Known ids"),
    Raises("mode-unknown", TEACH, lambda c: ck.resolve_checkpoint("google/ddpm-cat-256", "fast"), ValueError,
           r"'tiny' runs offline"),
    Raises("tiny-unknown-id", TEACH, lambda c: ck.resolve_checkpoint("someone/else", "tiny", verbose=False),
           CheckpointError, r"mode='hub' for any other"),
    # --- the other helpers -----------------------------------------------------------------------------------
    Raises("to-pil-latents", HELPERS, lambda c: __import__("course_utils").to_pil(torch.zeros(1, 4, 8, 8)),
           ValueError, r"decode them with the VAE"),
    Raises("to-pil-nan", HELPERS, lambda c: __import__("course_utils").to_pil(torch.full((1, 3, 4, 4), NAN)),
           ValueError, r"Check the loop"),
    Raises("to-pil-no-batch", HELPERS, lambda c: __import__("course_utils").to_pil(torch.zeros(3, 8, 8)),
           ValueError, r"x\[None\]"),
    Raises("grid-empty", HELPERS, lambda c: __import__("course_utils").grid([]), ValueError, r"no images"),
    Raises("show-grid-too-few-titles", HELPERS,
           lambda c: __import__("course_utils").show_grid([_img(), _img()], titles=["one"]), ValueError,
           r"one title per image"),
    Raises("recorder-both-modes", HELPERS, lambda c: __import__("course_utils").TrajectoryRecorder([0], 2),
           ValueError, r"not both"),
    Raises("recorder-every-zero", HELPERS, lambda c: __import__("course_utils").TrajectoryRecorder(every=0),
           ValueError, r"N >= 1"),
    Raises("recorder-timesteps-not-steps", HELPERS,
           lambda c: __import__("course_utils").TrajectoryRecorder(at_steps=[-1, 999.0]), ValueError,
           r"index i, not the timestep"),
    Raises("recorder-nothing-recorded", HELPERS, lambda c: __import__("course_utils").TrajectoryRecorder().images(),
           ValueError, r"call record\(\) in the loop"),
    Raises("median-time-result-not-function", HELPERS,
           lambda c: __import__("course_utils.timing").timing.median_time(3.0), TypeError, r"lambda"),
    Raises("median-time-zero-repeats", HELPERS,
           lambda c: __import__("course_utils.timing").timing.median_time(lambda: None, repeats=0), ValueError,
           r"at least 1"),
    Raises("alternating-zero-pairs", HELPERS,
           lambda c: __import__("course_utils.timing").timing.alternating_ratio(lambda: 0, lambda: 0, pairs=0),
           ValueError, r"pairs must be at least 1"),
    Raises("psnr-shapes", HELPERS,
           lambda c: __import__("course_utils.latents").latents.psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 4, 4)),
           ValueError, r"same shape"),
    Raises("similarity-one-string", HELPERS,
           lambda c: __import__("course_utils.text").text.embedding_similarity(c.sd["tokenizer"], c.sd["text_encoder"],
                                                                               "cat face"),
           ValueError, r"\['cat face', 'dog face'\]"),
    Raises("snr-not-a-scheduler", HELPERS, lambda c: __import__("course_utils.schedules").schedules.snr(object()),
           TypeError, r"DDPM, DDIM"),
    Raises("plot-schedules-list", HELPERS,
           lambda c: __import__("course_utils.schedules").schedules.plot_schedules([]), TypeError, r"\{name: scheduler\}"),
]


def _img():
    from PIL import Image

    return Image.new("RGB", (8, 8))


@pytest.mark.parametrize("case", RAISES, ids=[c.id for c in RAISES])
def test_raises(case: Raises, ctx: Ctx):
    t0 = time.perf_counter()
    with pytest.raises(case.exc) as e:
        case.call(ctx)
    elapsed = time.perf_counter() - t0
    msg = str(e.value)
    assert re.search(case.fix, msg, re.S), f"the message does not say what to do ({case.fix!r}):\n{msg}"
    if case.forbid:
        assert not re.search(case.forbid, msg), f"the message gives the wrong advice ({case.forbid!r}):\n{msg}"
    assert elapsed < case.limit, f"{case.id} took {elapsed:.2f} s (limit {case.limit} s)"


# ---------------------------------------------------------------------------------------------------------------
# Table 2: scripts and behaviours that report (exit status + message) instead of raising.


@dataclass
class Outcome:
    id: str
    cls: str
    run: Callable[[Ctx], tuple[int, str]]
    status: int
    fix: str
    limit: float
    unchanged: list[str] = field(default_factory=list)  # repo paths whose contents must not change
    forbid: str | None = None


def script(*argv: str, env: dict | None = None, timeout: float = 120):
    """Run a script of the course in a subprocess; return (exit status, stdout + stderr)."""
    def run(c: Ctx) -> tuple[int, str]:
        e = {**os.environ, "HF_HUB_OFFLINE": "1", "COURSE_STATIC": "1", **(env or {})}
        r = subprocess.run([PY, *argv], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=e)
        return r.returncode, r.stdout + r.stderr
    return run


def cache_hub_help_downloads_nothing(c: Ctx) -> tuple[int, str]:
    cache = c.tmp / "hf-cache"
    cache.mkdir()
    rc, out = script("-m", "course_utils", "cache-hub", "--help",
                     env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": c.silent.url(), "HF_HUB_CACHE": str(cache)})(c)
    return rc, out + f"\n[cache entries: {len(list(cache.iterdir()))}]"


def cache_hub_silent_network(c: Ctx) -> tuple[int, str]:
    import contextlib
    import io

    c.offline_endpoint()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = ck.cache_hub()
    return rc, buf.getvalue()


def hub_cache_with(c: Ctx, hub_id: str, source: Path) -> Path:
    """A Hugging Face cache holding ``hub_id`` (files copied from ``source``), laid out as huggingface_hub does."""
    cache = c.tmp / "hf-cache"
    repo = cache / f"models--{hub_id.replace('/', '--')}"
    commit = hashlib.sha1(hub_id.encode()).hexdigest()
    snap = repo / "snapshots" / commit
    shutil.copytree(source, snap, ignore=shutil.ignore_patterns("*.png", "*.md", "*.json.bak"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return cache


def hub_cached_behind_silent_network(c: Ctx) -> tuple[int, str]:
    """Hub mode, the checkpoint cached, the network accepting and never answering: resolve, then load, offline.

    The cached snapshot holds the tiny DDPM under the hub id (what the resolution does is the same for any
    content); before the fix from_pretrained(hub_id) waited on the network for over 10 minutes.
    """
    cache = hub_cache_with(c, "google/ddpm-cat-256", ck.ZOO_DIR / "tiny-ddpm")
    code = ("from course_utils import resolve_checkpoint\n"
            "from diffusers import DDPMPipeline\n"
            "p = resolve_checkpoint('google/ddpm-cat-256', 'hub')\n"
            "pipe = DDPMPipeline.from_pretrained(p)\n"
            "print('loaded', type(pipe.unet).__name__, 'from', p)\n")
    return script("-c", code, env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": c.silent.url(), "HF_HUB_CACHE": str(cache),
                                   "HF_HUB_ETAG_TIMEOUT": "600", "HF_HUB_DOWNLOAD_TIMEOUT": "600"}, timeout=120)(c)


def doctor_with_damaged_zoo(c: Ctx, **kw) -> tuple[int, str]:
    import contextlib
    import io

    from course_utils.doctor import main as doctor

    damage(c, **kw)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = doctor(["--no-hub"])
    return rc, buf.getvalue()


def _broken_notebook(c: Ctx) -> Path:
    """A notebook whose last cell fails two calls deep (a missing file)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("mode = 'tiny'\ndevice = 'cpu'", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("def load_weights(path):\n    return open(path).read()\n\n"
                                          "def prepare():\n    return load_weights('/no/such/zoo/file.safetensors')\n\n"
                                          "prepare()")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = c.tmp / "99_broken.ipynb"
    nbformat.write(nb, path)
    return path


def failing_notebook_report(c: Ctx) -> tuple[int, str]:
    """run_notebooks prints the whole cause of a failing cell: the exception, and the frames it came through."""
    import run_notebooks

    try:
        run_notebooks.execute(_broken_notebook(c), c.tmp / "out", timeout=60)
    except Exception as e:  # noqa: BLE001 - what the tool catches, too
        return 1, run_notebooks.failure_report(e)
    return 0, "the broken notebook ran"


def failing_refresh_report(c: Ctx) -> tuple[int, str]:
    """The same through --refresh (nbclient, whose traceback is one string): whole lines, not a letter per line."""
    import run_notebooks

    try:
        run_notebooks.refresh(_broken_notebook(c), timeout=60)
    except Exception as e:  # noqa: BLE001
        return 1, run_notebooks.failure_report(e)
    return 0, "the broken notebook ran"


def notebook00_with_unusable_cuda(c: Ctx) -> tuple[int, str]:
    """Notebook 00 uses its device parameter: 'cuda' where CUDA cannot work stops it, with the fix."""
    import run_notebooks

    try:
        run_notebooks.execute(REPO / "notebooks" / "00_setup.ipynb", c.tmp / "out", mode="tiny", device=BAD_CUDA,
                              timeout=120)
    except Exception as e:  # noqa: BLE001
        return 1, run_notebooks.failure_report(e)
    return 0, "notebook 00 passed with an unusable CUDA device"


MANIFEST = "course_utils/zoo/MANIFEST.sha256"
BENCH_OUT = ["course_utils/bench_results", "benchmarks/results", "_output/bench"]
PUBLISHED = [p for p in ("course_utils/bench_results", "benchmarks/results") if (REPO / p).exists()]

OUTCOMES = [
    # --- silent wrong results in the benchmark ----------------------------------------------------------------
    Outcome("bench-steps-negative", SILENT, script("benchmarks/bench.py", "--steps", "-3"), 2, r"from 1 to 1000",
            30, BENCH_OUT),
    Outcome("bench-steps-zero", SILENT, script("benchmarks/bench.py", "--steps", "0"), 2, r"from 1 to 1000", 30,
            BENCH_OUT),
    Outcome("bench-repeats-zero", SILENT, script("benchmarks/bench.py", "--repeats", "0"), 2, r"from 1 to 1000", 30,
            BENCH_OUT),
    Outcome("bench-size-not-multiple", SILENT, script("benchmarks/bench.py", "--arch", "sd-v1", "--size", "500"), 2,
            r"Use 496 or 504", 30, BENCH_OUT),
    Outcome("bench-quick-run-cannot-publish", SILENT,
            script("benchmarks/bench.py", "--no-compile", "--repeats", "1", "--publish"), 2,
            r"quick run: drop --publish", 30, BENCH_OUT),
    Outcome("bench-no-half-cannot-publish", SILENT, script("benchmarks/bench.py", "--no-half", "--publish"), 2,
            r"measure every row: drop --no-half", 30, BENCH_OUT),
    Outcome("bench-device-cuda-without-gpu", TEACH, script("benchmarks/bench.py", "--device", BAD_CUDA), 2, CUDA_FIX,
            30, BENCH_OUT),
    Outcome("bench-help", TEACH, script("benchmarks/bench.py", "--help"), 0, r"--publish.*committed|committed", 30,
            BENCH_OUT),
    # --- hangs ------------------------------------------------------------------------------------------------
    Outcome("hub-cached-silent-network-loads-offline", HANG, hub_cached_behind_silent_network, 0,
            r"loading it offline from .*snapshots.*\nloaded UNet2DModel", 90),
    Outcome("hub-probe-asked-once", HANG, hub_probe_twice, 0, r"False, False; first in 1\.\d+ s.*\(remembered\)", 2),
    Outcome("cache-hub-silent-network", HANG, cache_hub_silent_network, 1, r"make cache-hub. on a machine that is online",
            4.5),
    Outcome("cache-hub-help-downloads-nothing", HANG, cache_hub_help_downloads_nothing, 0,
            r"usage: python -m course_utils cache-hub.*\[cache entries: 0\]", 15),
    # --- integrity --------------------------------------------------------------------------------------------
    Outcome("doctor-empty-manifest-not-ready", INTEGRITY,
            lambda c: doctor_with_damaged_zoo(c, manifest="", corrupt="tiny-sd/unet/diffusion_pytorch_model.safetensors"),
            1, r"BROKEN.*NOT ready.*git checkout", 30, forbid=r"Ready for the course"),
    Outcome("doctor-corrupt-unet-not-ready", INTEGRITY,
            lambda c: doctor_with_damaged_zoo(c, corrupt="tiny-sd/unet/diffusion_pytorch_model.safetensors"),
            1, r"tiny-sd BROKEN.*corrupted.*NOT ready", 30, forbid=r"Ready for the course"),
    Outcome("make-manifest-help-writes-nothing", INTEGRITY, script("recipes/make_manifest.py", "--help"), 0,
            r"--force", 30, [MANIFEST]),
    Outcome("make-manifest-needs-force", INTEGRITY, script("recipes/make_manifest.py"), 1,
            r"not overwriting.*restore it.*--force", 30, [MANIFEST]),
    Outcome("make-manifest-force-and-check", INTEGRITY, script("recipes/make_manifest.py", "--force", "--check"), 2,
            r"not allowed with", 30, [MANIFEST]),
    # --- raw library errors -> teaching errors: scripts -------------------------------------------------------
    Outcome("cli-no-command", TEACH, script("-m", "course_utils"), 2, r"commands:.*doctor", 15),
    Outcome("cli-unknown-command", TEACH, script("-m", "course_utils", "frobnicate"), 2, r"use `doctor` or `cache-hub`",
            15),
    Outcome("cli-help", TEACH, script("-m", "course_utils", "--help"), 0, r"cache-hub", 15),
    Outcome("cli-doctor-help", TEACH, script("-m", "course_utils", "doctor", "--help"), 0, r"--no-hub", 15),
    Outcome("cli-doctor-bad-flag", TEACH, script("-m", "course_utils", "doctor", "--fast"), 2, r"unrecognized", 15),
    Outcome("cli-cache-hub-unknown-id", TEACH, script("-m", "course_utils", "cache-hub", "someone/else"), 2,
            r"unknown hub id.*google/ddpm-cat-256", 15),
    Outcome("ddpm-recipe-steps-negative", TEACH, script("recipes/train_tiny_ddpm.py", "--steps", "-3"), 2,
            r"at least 1", 30, ["course_utils/zoo/tiny-ddpm"]),
    Outcome("ddpm-recipe-seed-text", TEACH, script("recipes/train_tiny_ddpm.py", "--seed", "abc"), 2,
            r"give a seed such as 0", 30),
    Outcome("ddpm-recipe-cuda-without-gpu", TEACH, script("recipes/train_tiny_ddpm.py", "--device", BAD_CUDA), 2,
            CUDA_FIX, 30),
    Outcome("ddpm-recipe-high-t-weight-below-1", TEACH, script("recipes/train_tiny_ddpm.py", "--high-t-weight", "0.5"), 2,
            r"--high-t-weight 0\.5 must be at least 1 \(1 turns the weighting off\)", 30, ["course_utils/zoo/tiny-ddpm"]),
    Outcome("ddpm-recipe-init-no-unet", TEACH, script("recipes/train_tiny_ddpm.py", "--init", "/no/such"), 2,
            r"--init /no/such: no UNet there .*such as a train_tiny_ddpm\.py run's --out", 30,
            ["course_utils/zoo/tiny-ddpm"]),
    Outcome("ddpm-recipe-help", TEACH, script("recipes/train_tiny_ddpm.py", "--help"), 0, r"--max-minutes", 30,
            ["course_utils/zoo/tiny-ddpm"]),
    Outcome("sd-recipe-lr-nan", TEACH, script("recipes/train_tiny_sd.py", "--stage", "vae", "--lr", "nan"), 2,
            r"finite number above 0", 30),
    Outcome("sd-recipe-batch-zero", TEACH, script("recipes/train_tiny_sd.py", "--stage", "unet", "--batch", "0"), 2,
            r"at least 1", 30),
    Outcome("sd-recipe-bad-stage", TEACH, script("recipes/train_tiny_sd.py", "--stage", "text"), 2,
            r"choose from .?vae.?, .?unet", 30),
    Outcome("sd-recipe-unet-init-no-pipeline", TEACH,
            script("recipes/train_tiny_sd.py", "--stage", "unet", "--init", "/no/such"), 2,
            r"--init /no/such: no text_encoder/ or unet/ there.*such as a --stage unet run's OUT", 30),
    Outcome("sd-recipe-decoder-init", TEACH,
            script("recipes/train_tiny_sd.py", "--stage", "decoder", "--init", "/no/such"), 2,
            r"--init goes with --stage vae or --stage unet", 30),
    Outcome("sd-recipe-help", TEACH, script("recipes/train_tiny_sd.py", "--help"), 0, r"--stage", 30,
            ["course_utils/zoo/tiny-sd"]),
    Outcome("evaluate-path-without-only", TEACH, script("recipes/evaluate_zoo.py", "--path", "/tmp"), 2,
            r"--only ddpm or --only sd", 30),
    Outcome("record-cpu-run-no-folders", TEACH,
            script("recipes/record_cpu_run.py", "tiny-ddpm", "--out", "/no/such", "--run-dir", "/no/such"), 2,
            r"not a folder", 30),
    Outcome("build-tokenizer-no-wheel", TEACH, script("recipes/build_tokenizer.py", "--wheel", "/no/such.whl"), 2,
            r"not a wheel file", 30),
    Outcome("model-cards-help", TEACH, script("recipes/write_model_cards.py", "--help"), 0, r"--check", 30),
    Outcome("run-notebooks-unknown", TEACH, script("tools/run_notebooks.py", "42"), 1, r"give a number such as 02",
            30, ["_output/timings.json"]),
    Outcome("run-notebooks-cuda-without-gpu", TEACH, script("tools/run_notebooks.py", "00", "--device", BAD_CUDA),
            2, CUDA_FIX, 30, ["_output/timings.json"]),
    Outcome("run-notebooks-jobs-zero", TEACH, script("tools/run_notebooks.py", "00", "--jobs", "0"), 2,
            r"--jobs 0: give how many notebooks may run at once", 30, ["_output/timings.json"]),
    Outcome("run-notebooks-jobs-on-gpu", TEACH, script("tools/run_notebooks.py", "00", "--jobs", "2", "--device", "auto"), 2,
            r"run them one at a time", 30, ["_output/timings.json"]),
    Outcome("run-notebooks-help", TEACH, script("tools/run_notebooks.py", "--help"), 0, r"--timeout", 30, ["_output/timings.json"]),
    Outcome("run-notebooks-full-cause", TEACH, failing_notebook_report, 1,
            r"FileNotFoundError.*prepare\(\).*load_weights.*no/such/zoo", 90),
    Outcome("run-notebooks-refresh-full-cause", TEACH, failing_refresh_report, 1,
            r"FileNotFoundError.*prepare\(\).*load_weights.*no/such/zoo", 90),
    Outcome("build-book-help-builds-nothing", TEACH, script("tools/build_book.py", "--help"), 0, r"usage", 30,
            ["book"]),
    Outcome("notebook-00-uses-its-device", TEACH, notebook00_with_unusable_cuda, 1, r"DeviceError.*" + CUDA_FIX, 180),
]


def fingerprint(rel: str) -> str:
    """A digest of a path's file names, sizes and mtimes (or 'absent')."""
    p = REPO / rel
    if not p.exists():
        return "absent"
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


@pytest.mark.parametrize("case", OUTCOMES, ids=[c.id for c in OUTCOMES])
def test_outcomes(case: Outcome, ctx: Ctx):
    before = {rel: fingerprint(rel) for rel in case.unchanged}
    t0 = time.perf_counter()
    status, text = case.run(ctx)
    elapsed = time.perf_counter() - t0
    assert status == case.status, f"exit status {status}, expected {case.status}:\n{text[-3000:]}"
    assert re.search(case.fix, text, re.S), f"the output does not say what to do ({case.fix!r}):\n{text[-3000:]}"
    if case.forbid:
        assert not re.search(case.forbid, text), f"the output says {case.forbid!r}:\n{text[-3000:]}"
    assert elapsed < case.limit, f"{case.id} took {elapsed:.1f} s (limit {case.limit} s)"
    for rel, fp in before.items():
        assert fingerprint(rel) == fp, f"{case.id} changed {rel}"


# ---------------------------------------------------------------------------------------------------------------
# The counts the README's "Reliability" section reports.

CLASS_COUNTS = {cls: sum(c.cls == cls for c in RAISES + OUTCOMES) for cls in (SILENT, HANG, INTEGRITY, TEACH, HELPERS)}


def test_the_table_is_large_and_covers_every_class():
    assert len(RAISES) + len(OUTCOMES) >= 75 and all(n >= 5 for n in CLASS_COUNTS.values()), CLASS_COUNTS
    assert len({c.id for c in RAISES + OUTCOMES}) == len(RAISES) + len(OUTCOMES), "case ids must be unique"
    assert all(c.limit > 0 and not math.isinf(c.limit) for c in RAISES + OUTCOMES)


def test_verify_data_checks_package_data_beside_the_zoo(ctx: Ctx):
    """The good path of the cases above: listed package data that matches passes and is reported."""
    package_data(ctx)
    checked = ck.verify_data("../data", expected=["test-captions.txt"])
    assert "../data/test-captions.txt" in checked
    assert checked == [rel for rel in ck.read_manifest() if rel.startswith("../data/")]
    assert len(ck.verify_data("tiny-sd")) == len(ck.EXPECTED_FILES["tiny-sd"])


if __name__ == "__main__":
    for cls, n in CLASS_COUNTS.items():
        print(f"{cls}: {n}")
    print(f"total: {sum(CLASS_COUNTS.values())} ({len(RAISES)} raising calls, {len(OUTCOMES)} scripts/behaviours)")


def test_the_readme_states_these_counts():
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Reliability"):text.index("## Troubleshooting")]
    for cls, n in CLASS_COUNTS.items():
        assert re.search(rf"^\| {re.escape(cls)} \| {n} \|", section, re.M), f"README: {cls} should count {n}"
    assert f"**{sum(CLASS_COUNTS.values())}**" in section
