"""Text embeddings made visible: how similar the text encoder finds different prompts.

Introduced in ``notebooks/04_sd_components.ipynb``.
"""

from __future__ import annotations


def embedding_similarity(tokenizer, text_encoder, prompts, device: str = "cpu"):
    """Cosine similarity between prompts, using the text encoder's pooled output (the end-of-text token)."""
    import torch
    import torch.nn.functional as F

    if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts) or len(prompts) < 2:
        raise ValueError(f"embedding_similarity() compares a list of at least two prompts (strings), e.g. "
                         f"['cat face', 'dog face'], not {prompts!r}.")
    ids = tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids.to(device)
    with torch.no_grad():
        pooled = text_encoder(ids).pooler_output
    pooled = F.normalize(pooled.float(), dim=-1)
    return (pooled @ pooled.T).cpu()


def plot_similarity(matrix, labels, title: str = "cosine similarity of text embeddings"):
    import matplotlib.pyplot as plt

    n = len(labels)
    if tuple(matrix.shape) != (n, n):
        raise ValueError(f"plot_similarity() needs an {n}x{n} matrix for {n} labels, not {tuple(matrix.shape)}.")
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 0.8 + 0.5 * n))
    im = ax.imshow(matrix.numpy(), cmap="viridis", vmin=min(0.0, float(matrix.min())), vmax=1)
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{float(matrix[i, j]):.2f}", ha="center", va="center", fontsize=7, color="w")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
