"""Stable Diffusion's denoising loop, written out by hand, as one function.

``notebooks/05_sd_from_components.ipynb`` writes this loop cell by cell (that is the lesson); this is
the same code as a function, so that the tests can check it against ``StableDiffusionPipeline`` for
several schedulers, guidance scales and batch sizes, and notebooks 06-09 can reuse it. Every diffusers
call in it is the one the notebook teaches: nothing is hidden behind another helper.

``ddpm_generate`` is its sibling for the DDPM loop of ``notebooks/02_ddpm_from_components.ipynb``.

Both check every argument before any model runs (sizes, step counts, guidance, prompts, devices,
output types), refuse runaway sizes on a CPU, and raise instead of returning an image made of NaN.
"""

from __future__ import annotations

import inspect
import warnings

OUTPUT_TYPES = ("np", "pil", "pt")


def check_prompts(tokenizer, prompts, what: str = "prompts") -> list[str]:
    """Validate prompts the way a teacher would: say what is wrong and what to do."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, (list, tuple)):
        raise TypeError(f"{what} must be a string or a list of strings, not {type(prompts).__name__} {prompts!r}: "
                        "e.g. 'cat face' or ['cat face', 'dog face'].")
    prompts = list(prompts)
    if not prompts:
        raise ValueError("The prompt list is empty: pass at least one prompt, e.g. ['cat face']. "
                         "(For an unconditional image use the empty prompt [''].)")
    for p in prompts:
        if not isinstance(p, str):
            raise TypeError(f"Prompts must be strings, not {type(p).__name__}: {p!r}. Write it as text, e.g. "
                            f"{str(p)!r}, or pass a list of strings.")
        ids = tokenizer(p).input_ids
        if len(ids) > tokenizer.model_max_length:
            kept = tokenizer.decode(ids[1 : tokenizer.model_max_length - 1])
            cut = tokenizer.decode(ids[tokenizer.model_max_length - 1 : -1])
            warnings.warn(f"This prompt has {len(ids)} tokens; the text encoder reads {tokenizer.model_max_length} "
                          f"(with the start and end tokens), so the end is cut off.\n  kept: {kept!r}\n  cut:  {cut!r}",
                          stacklevel=2)
    return prompts


def check_guidance(guidance_scale: float) -> float:
    import math
    import numbers

    if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, numbers.Real):
        raise TypeError(f"guidance_scale must be a number such as 7.5, not {type(guidance_scale).__name__} "
                        f"{guidance_scale!r}.")
    if not math.isfinite(guidance_scale):
        raise ValueError(f"guidance_scale={guidance_scale} is not a finite number: NaN silently switches guidance "
                         "off and infinity turns the image into NaN. Use 1 for no guidance, or 5-10 for the usual "
                         "effect (7.5 is Stable Diffusion's default).")
    if guidance_scale < 1:
        raise ValueError(
            f"guidance_scale={guidance_scale} is below 1. Classifier-free guidance computes "
            "uncond + scale * (text - uncond): 1 means the text prediction alone (no guidance), values above 1 "
            "push further towards the prompt, and values below 1 pull the image back towards the unconditional "
            "one, against your prompt. Use 1 to switch guidance off, or 5-10 for the usual effect.")
    return float(guidance_scale)


def check_steps(num_inference_steps, scheduler) -> int:
    """A whole number of denoising steps, at least 1 and at most the scheduler's training timesteps."""
    from .device import _check_int

    try:
        steps = _check_int("num_inference_steps", num_inference_steps, minimum=1)
    except ValueError:
        raise ValueError(f"num_inference_steps={num_inference_steps}: the loop needs at least 1 step (with 0 the "
                         "'image' would be the starting noise, decoded). Use 25-50 for a good image, 2-5 for a quick "
                         "test.") from None
    train = int(getattr(scheduler.config, "num_train_timesteps", 1000))
    if steps > train:
        raise ValueError(f"num_inference_steps={steps} is more than the {train} timesteps the scheduler was "
                         f"trained with: use at most {train} (25-50 is usual).")
    return steps


def check_output_type(output_type) -> str:
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type={output_type!r} is not one of {OUTPUT_TYPES}: 'np' gives a float array "
                         "(N, H, W, 3) in [0, 1], 'pil' a list of PIL images, 'pt' a tensor (N, 3, H, W) in [0, 1].")
    return output_type


def check_models_on(device: str, **models) -> str:
    """``device`` resolved and checked ('cuda' without a GPU is a DeviceError), and every model already on it."""
    from .device import pick_device

    device = pick_device(device)
    for name, model in models.items():
        param = next(model.parameters(), None) if hasattr(model, "parameters") else None
        if param is not None and param.device.type != device.split(":")[0]:
            raise ValueError(f"The {name} is on {param.device.type} but device={device!r}: move the models first, "
                             f"e.g. {name}.to({device!r}) (or pass device={param.device.type!r}).")
    return device


def check_generator(generator, device: str):
    if generator is None:
        return None
    import torch

    if isinstance(generator, list):
        for g in generator:
            check_generator(g, device)
        return generator
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator (or None), not {type(generator).__name__} "
                        f"{generator!r}: use generator=make_generator(device, seed).")
    if generator.device.type != device.split(":")[0]:
        raise ValueError(f"The generator is on {generator.device.type} but the noise is made on {device}: a "
                         "generator must live where the noise is drawn. Use make_generator(device, seed).")
    return generator


def check_finite(tensor, what: str, step=None) -> None:
    """Raise instead of turning NaN or infinity into a plausible-looking image."""
    import torch

    if not torch.isfinite(tensor).all():
        where = f" at step {step}" if step is not None else ""
        raise FloatingPointError(
            f"The {what} became NaN or infinite{where}, so no image is returned. Usual causes: a guidance_scale far "
            "too large (use 5-10), float16 weights overflowing (use float32, the default on a CPU), or a corrupted "
            "checkpoint (verify_checkpoint(name) in tiny mode).")


def scheduler_step_kwargs(scheduler, generator, eta: float = 0.0) -> dict:
    """The keyword arguments this scheduler's ``step`` accepts: ``eta`` (DDIM) and ``generator`` (stochastic ones)."""
    params = inspect.signature(scheduler.step).parameters
    kwargs = {}
    if "eta" in params:
        kwargs["eta"] = eta
    if "generator" in params:
        kwargs["generator"] = generator
    return kwargs


def predicted_x0(scheduler, latents, noise_pred, t):
    """The clean latents the model currently predicts: x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t).

    For schedulers whose latents live on the variance-preserving scale (DDIM, PNDM, UniPC, DPM-Solver);
    Euler-type schedulers (init_noise_sigma > 1) scale latents by sigma instead, so None is returned.
    """
    if float(scheduler.init_noise_sigma) > 1.0 or not hasattr(scheduler, "alphas_cumprod"):
        return None
    a = scheduler.alphas_cumprod.to(latents.device)[int(t)]
    return (latents - (1 - a).sqrt() * noise_pred) / a.sqrt()


def sd_generate(vae, tokenizer, text_encoder, unet, scheduler, prompts, negative_prompts=None, height=None,
                width=None, num_inference_steps: int = 25, guidance_scale: float = 7.5, generator=None,
                device: str = "cpu", output_type: str = "np", recorder=None):
    """The tutorial's loop (notebook 05). Returns a float array (N, H, W, 3) in [0, 1], or PIL images.

    Every argument is checked before any model runs; a size far above the model's own on a CPU is
    refused, and NaN or infinite latents raise ``FloatingPointError`` instead of returning an image.
    """
    import torch

    from .device import check_image_size

    # 0. Check everything first: a mistake here costs milliseconds, not a whole run.
    prompts = check_prompts(tokenizer, prompts)
    guidance_scale = check_guidance(guidance_scale)
    num_inference_steps = check_steps(num_inference_steps, scheduler)
    output_type = check_output_type(output_type)
    device = check_models_on(device, unet=unet, vae=vae, text_encoder=text_encoder)
    check_generator(generator, device)
    vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
    native = unet.config.sample_size * vae_scale_factor
    height = native if height is None else height
    width = native if width is None else width
    check_image_size(height, width, vae_scale_factor, native=native, device=device)
    batch_size = len(prompts)
    do_cfg = guidance_scale > 1.0
    negative = None
    if negative_prompts is not None:
        negative = check_prompts(tokenizer, negative_prompts, "negative_prompts")
        if len(negative) != batch_size:
            raise ValueError(f"{len(negative)} negative prompts for {batch_size} prompts: give one per prompt.")

    # 1. Text embeddings (conditional, then unconditional), both under no_grad.
    text_input = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                           truncation=True, return_tensors="pt")
    with torch.no_grad():
        text_embeddings = text_encoder(text_input.input_ids.to(device))[0]
    if do_cfg:
        negative = [""] * batch_size if negative is None else negative
        uncond_input = tokenizer(negative, padding="max_length", max_length=text_input.input_ids.shape[-1],
                                 truncation=True, return_tensors="pt")
        with torch.no_grad():
            uncond_embeddings = text_encoder(uncond_input.input_ids.to(device))[0]
        text_embeddings = torch.cat([uncond_embeddings, text_embeddings])

    # 2. Starting latents, scaled for the scheduler.
    scheduler.set_timesteps(num_inference_steps, device=device)
    latents = torch.randn((batch_size, unet.config.in_channels, height // vae_scale_factor, width // vae_scale_factor),
                          generator=generator, device=device, dtype=text_embeddings.dtype)
    latents = latents * scheduler.init_noise_sigma

    # 3. The denoising loop.
    extra = scheduler_step_kwargs(scheduler, generator)
    for i, t in enumerate(scheduler.timesteps):
        latent_model_input = torch.cat([latents] * 2) if do_cfg else latents
        latent_model_input = scheduler.scale_model_input(latent_model_input, timestep=t)
        with torch.no_grad():
            noise_pred = unet(latent_model_input, t, encoder_hidden_states=text_embeddings).sample
        if do_cfg:
            noise_pred_uncond, noise_pred_text = noise_pred.chunk(2)
            noise_pred = noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)
        x0 = predicted_x0(scheduler, latents, noise_pred, t) if recorder is not None else None
        latents = scheduler.step(noise_pred, t, latents, **extra).prev_sample
        check_finite(latents, "latents", i)
        if recorder is not None:
            recorder.record(i, t, latents, x0=x0)

    # 4. Decode with the VAE's own scaling factor, then to images.
    with torch.no_grad():
        image = vae.decode(latents / vae.config.scaling_factor).sample
    check_finite(image, "decoded image")
    return _to_output((image / 2 + 0.5).clamp(0, 1), output_type)


def _to_output(image, output_type: str):
    """(N, 3, H, W) in [0, 1] -> what ``output_type`` asks for."""
    if output_type == "pt":
        return image
    image = image.cpu().permute(0, 2, 3, 1).float().numpy()
    if output_type == "pil":
        from PIL import Image

        return [Image.fromarray((im * 255).round().astype("uint8")) for im in image]
    return image


def ddpm_generate(unet, scheduler, batch_size: int = 1, num_inference_steps: int = 50, generator=None,
                  device: str = "cpu", output_type: str = "np", recorder=None, height=None, width=None):
    """The DDPM loop of notebook 02 as one function: noise, then ``unet`` + ``scheduler.step`` per timestep.

    Returns a float array (N, H, W, 3) in [0, 1], PIL images or a tensor, like ``sd_generate``, with
    the same checks before any work and the same refusal of NaN.
    """
    import torch

    from .device import _check_int, check_image_size

    batch_size = _check_int("batch_size", batch_size, minimum=1)
    num_inference_steps = check_steps(num_inference_steps, scheduler)
    output_type = check_output_type(output_type)
    device = check_models_on(device, unet=unet)
    check_generator(generator, device)
    native = unet.config.sample_size
    native = native if isinstance(native, int) else native[0]
    height = native if height is None else height
    width = native if width is None else width
    check_image_size(height, width, 2 ** (len(unet.config.block_out_channels) - 1), native=native, device=device)

    scheduler.set_timesteps(num_inference_steps)
    x = torch.randn((batch_size, unet.config.in_channels, height, width), generator=generator, device=device)
    extra = scheduler_step_kwargs(scheduler, generator)
    for i, t in enumerate(scheduler.timesteps):
        with torch.no_grad():
            noisy_residual = unet(x, t).sample
        out = scheduler.step(noisy_residual, t, x, **extra)
        x = out.prev_sample
        check_finite(x, "sample", i)
        if recorder is not None:
            recorder.record(i, t, x, x0=getattr(out, "pred_original_sample", None))
    return _to_output((x / 2 + 0.5).clamp(0, 1), output_type)
