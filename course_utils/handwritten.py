"""Stable Diffusion's denoising loop, written out by hand, as one function.

``notebooks/05_sd_from_components.ipynb`` writes this loop cell by cell (that is the lesson); this is
the same code as a function, so that the tests can check it against ``StableDiffusionPipeline`` for
several schedulers, guidance scales and batch sizes, and notebooks 06-09 can reuse it. Every diffusers
call in it is the one the notebook teaches: nothing is hidden behind another helper.
"""

from __future__ import annotations

import inspect
import warnings


def check_prompts(tokenizer, prompts) -> list[str]:
    """Validate prompts the way a teacher would: say what is wrong and what to do."""
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise ValueError("The prompt list is empty: pass at least one prompt, e.g. ['cat face']. "
                         "(For an unconditional image use the empty prompt [''].)")
    for p in prompts:
        if not isinstance(p, str):
            raise TypeError(f"Prompts must be strings, not {type(p).__name__}: {p!r}")
        ids = tokenizer(p).input_ids
        if len(ids) > tokenizer.model_max_length:
            kept = tokenizer.decode(ids[1 : tokenizer.model_max_length - 1])
            cut = tokenizer.decode(ids[tokenizer.model_max_length - 1 : -1])
            warnings.warn(f"This prompt has {len(ids)} tokens; the text encoder reads {tokenizer.model_max_length} "
                          f"(with the start and end tokens), so the end is cut off.\n  kept: {kept!r}\n  cut:  {cut!r}",
                          stacklevel=2)
    return prompts


def check_guidance(guidance_scale: float) -> None:
    if guidance_scale < 1:
        raise ValueError(
            f"guidance_scale={guidance_scale} is below 1. Classifier-free guidance computes "
            "uncond + scale * (text - uncond): 1 means the text prediction alone (no guidance), values above 1 "
            "push further towards the prompt, and values below 1 pull the image back towards the unconditional "
            "one, against your prompt. Use 1 to switch guidance off, or 5-10 for the usual effect.")


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
    """The tutorial's loop (notebook 05). Returns a float array (N, H, W, 3) in [0, 1], or PIL images."""
    import torch

    from .device import check_image_size

    prompts = check_prompts(tokenizer, prompts)
    check_guidance(guidance_scale)
    vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
    height = height or unet.config.sample_size * vae_scale_factor
    width = width or unet.config.sample_size * vae_scale_factor
    check_image_size(height, width, vae_scale_factor)
    batch_size = len(prompts)
    do_cfg = guidance_scale > 1.0

    # 1. Text embeddings (conditional, then unconditional), both under no_grad.
    text_input = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                           truncation=True, return_tensors="pt")
    with torch.no_grad():
        text_embeddings = text_encoder(text_input.input_ids.to(device))[0]
    if do_cfg:
        negative = [""] * batch_size if negative_prompts is None else check_prompts(tokenizer, negative_prompts)
        if len(negative) != batch_size:
            raise ValueError(f"{len(negative)} negative prompts for {batch_size} prompts: give one per prompt.")
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
        if recorder is not None:
            recorder.record(i, t, latents, x0=x0)

    # 4. Decode with the VAE's own scaling factor, then to images.
    with torch.no_grad():
        image = vae.decode(latents / vae.config.scaling_factor).sample
    image = (image / 2 + 0.5).clamp(0, 1).cpu().permute(0, 2, 3, 1).float().numpy()
    if output_type == "pil":
        from PIL import Image

        return [Image.fromarray((im * 255).round().astype("uint8")) for im in image]
    return image
