"""Plots of noise schedules and timesteps.

Introduced in ``notebooks/03_schedulers.ipynb``.
"""

from __future__ import annotations


def snr(scheduler):
    """Signal-to-noise ratio alpha_bar / (1 - alpha_bar) for every training timestep."""
    if not hasattr(scheduler, "alphas_cumprod"):
        raise TypeError(f"snr() needs a scheduler with alphas_cumprod (DDPM, DDIM, PNDM, ...), not "
                        f"{type(scheduler).__name__}; flow-matching schedulers have no alpha_bar.")
    a = scheduler.alphas_cumprod
    return a / (1 - a)


def plot_schedules(schedulers: dict):
    """betas, alphas_cumprod and log10 SNR against the training timestep, one line per scheduler."""
    import matplotlib.pyplot as plt

    if not isinstance(schedulers, dict) or not schedulers:
        raise TypeError("plot_schedules() takes a dict {name: scheduler}, e.g. {'linear': DDPMScheduler()}.")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for name, s in schedulers.items():
        axes[0].plot(s.betas.numpy(), label=name)
        axes[1].plot(s.alphas_cumprod.numpy(), label=name)
        axes[2].plot(snr(s).log10().numpy(), label=name)
    for ax, title in zip(axes, ("beta_t", "alpha_bar_t (signal kept)", "log10 SNR"), strict=False):
        ax.set_title(title)
        ax.set_xlabel("training timestep t")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_timesteps(timesteps_by_name: dict, num_train_timesteps: int = 1000):
    """Where each schedule's inference timesteps fall on the 0..T axis."""
    import matplotlib.pyplot as plt

    if not isinstance(timesteps_by_name, dict) or not timesteps_by_name:
        raise TypeError("plot_timesteps() takes a dict {name: timesteps}, e.g. {'ddpm': scheduler.timesteps}.")
    fig, ax = plt.subplots(figsize=(10, 0.5 + 0.45 * len(timesteps_by_name)))
    for row, (_name, ts) in enumerate(timesteps_by_name.items()):
        ax.scatter([int(t) for t in ts], [row] * len(ts), s=12)
    ax.set_yticks(range(len(timesteps_by_name)), list(timesteps_by_name))
    ax.set_xlim(-20, num_train_timesteps + 20)
    ax.set_xlabel("timestep (noisier to the right)")
    fig.tight_layout()
    return fig
