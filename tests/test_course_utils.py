import subprocess
import sys

import numpy as np
import pytest
import torch

from course_utils import (
    DeviceError,
    TrajectoryRecorder,
    check_image_size,
    grid,
    make_generator,
    pick_device,
    pick_dtype,
    show_grid,
    to_pil,
)


def test_import_is_light_and_sets_no_state():
    code = ("import sys; import course_utils; heavy = [m for m in ('torch', 'diffusers', 'transformers', "
            "'matplotlib', 'numpy', 'PIL') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_pick_device_auto_and_errors():
    assert pick_device("auto") in ("cuda", "mps", "cpu")
    assert pick_device("cpu") == "cpu"
    with pytest.raises(DeviceError, match="use 'auto'"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            pick_device("cuda")


def test_pick_dtype_refuses_fp16_on_cpu():
    assert pick_dtype("cpu") == torch.float32
    with pytest.raises(DeviceError, match="float32 on the CPU"):
        pick_dtype("cpu", half=True)
    assert pick_dtype("cuda", half=True) == torch.float16


def test_generator_is_on_the_device_and_reproducible():
    g1, g2 = make_generator("cpu", 3), make_generator("cpu", 3)
    assert g1.device.type == "cpu"
    assert torch.equal(torch.randn(4, generator=g1), torch.randn(4, generator=g2))


def test_image_size_must_divide_by_8():
    check_image_size(64, 512)
    with pytest.raises(ValueError, match="Use 496 or 504"):
        check_image_size(500, 512)
    with pytest.raises(ValueError, match="width=65"):
        check_image_size(64, 65)


def test_to_pil_maps_model_range_to_bytes():
    x = torch.tensor([-1.0, 0.0, 1.0, 3.0]).view(1, 1, 2, 2).repeat(2, 3, 1, 1)
    ims = to_pil(x)
    assert len(ims) == 2 and ims[0].size == (2, 2)
    assert np.asarray(ims[0])[..., 0].tolist() == [[0, 128], [255, 255]]


def test_grid_and_show_grid():
    ims = to_pil(torch.zeros(5, 3, 8, 8))
    g = grid(ims, cols=3, size=16)
    assert g.size == (48, 32)
    with pytest.raises(ValueError):
        grid([])
    fig = show_grid(ims, titles=list("abcde"), cols=3)
    assert len(fig.axes) == 6


def test_recorder_in_a_hand_written_loop(ddpm_path):
    from diffusers import DDPMScheduler, UNet2DModel

    model, scheduler = UNet2DModel.from_pretrained(ddpm_path), DDPMScheduler.from_pretrained(ddpm_path)
    scheduler.set_timesteps(10)
    rec = TrajectoryRecorder(at_steps=[0, 5, 9])
    x = torch.randn(1, 3, 32, 32, generator=make_generator("cpu", 0))
    for i, t in enumerate(scheduler.timesteps):
        with torch.no_grad():
            out = scheduler.step(model(x, t).sample, t, x, generator=make_generator("cpu", i))
        rec.record(i, t, out.prev_sample, x0=out.pred_original_sample)
        x = out.prev_sample
    assert [f.step for f in rec.frames] == [0, 5, 9]
    assert [f.timestep for f in rec.frames] == [900, 400, 0]
    assert torch.equal(rec.frames[-1].latents, x)
    assert len(rec.images("x0")) == 3


def test_recorder_as_pipeline_callback(sd_path, tmp_path):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(sd_path)
    pipe.set_progress_bar_config(disable=True)
    rec = TrajectoryRecorder(every=2)
    out = pipe("cat face", num_inference_steps=6, generator=make_generator("cpu", 0), output_type="latent",
               callback_on_step_end=rec.callback)
    n = len(pipe.scheduler.timesteps)  # PNDM takes one extra step for its warm-up
    assert [f.step for f in rec.frames] == list(range(0, n, 2))
    assert rec.frames[0].latents.shape == (1, 4, 8, 8)
    rec2 = TrajectoryRecorder()
    out2 = pipe("cat face", num_inference_steps=6, generator=make_generator("cpu", 0), output_type="latent",
                callback_on_step_end=rec2.callback)
    assert torch.equal(rec2.frames[-1].latents, out2.images) and torch.equal(out.images, out2.images)
    with pytest.raises(ValueError, match="x0"):
        rec.images("x0")

    def decode(z):
        with torch.no_grad():
            return to_pil(pipe.vae.decode(z / pipe.vae.config.scaling_factor).sample)[0]

    gif = rec2.to_gif(tmp_path / "t.gif", decode=decode)
    from PIL import Image

    assert Image.open(gif).n_frames == n


def test_schedule_plots():
    from diffusers import DDPMScheduler

    from course_utils.schedules import plot_schedules, plot_timesteps, snr

    s = DDPMScheduler()
    assert snr(s)[0] > snr(s)[-1]
    assert len(plot_schedules({"linear": s}).axes) == 3
    s.set_timesteps(5)
    assert plot_timesteps({"ddpm": s.timesteps}).axes[0].get_xlim()[1] > 999


def test_doctor_report_and_cli():
    from course_utils.doctor import diagnose

    report = diagnose(check_hub=False)
    for key in ("torch", "diffusers", "transformers", "device", "auto_mode", "disk_free_gib", "memory_free_gib"):
        assert key in report
    assert report["tiny_zoo"] == "tiny-ddpm ok, tiny-sd ok"
    r = subprocess.run([sys.executable, "-m", "course_utils", "doctor"], capture_output=True, text=True,
                       timeout=60, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and "Ready for the course" in r.stdout and "auto_mode" in r.stdout
    r = subprocess.run([sys.executable, "-m", "course_utils"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stdout
