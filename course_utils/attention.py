"""Cross-attention maps: an attention processor that records which latent pixels attend to which token.

Introduced in ``notebooks/11_cross_attention_maps.ipynb``. The UNet of Stable Diffusion reads the prompt
through *cross-attention* layers (``attn2`` in each transformer block): every latent pixel makes a query,
every one of the 77 text embeddings a key, and ``softmax(q kᵀ / √d)`` says how much of each token each
pixel takes in. diffusers computes this inside an *attention processor*, which any model lets you replace::

    recorder = CrossAttentionRecorder().attach(unet)   # unet.set_attn_processor(...) on every attn2
    ... run your loop or a pipeline ...
    recorder.detach()                                  # the default processors are back

``RecordingAttnProcessor`` is ``AttnProcessor2_0`` (diffusers' default) written out for Stable Diffusion's
attention layers, plus two lines that compute and keep the probabilities. The output still comes from the
same ``F.scaled_dot_product_attention`` call, so it is identical to the default processor's (the notebook
and ``tests/test_attention.py`` assert ``torch.equal``).
"""

from __future__ import annotations

import math


class RecordingAttnProcessor:
    """diffusers' ``AttnProcessor2_0``, written out, that also hands the attention probabilities to ``store``.

    ``store(name, probs)`` gets ``probs`` of shape (batch, heads, pixels, tokens): each row sums to 1.
    """

    def __init__(self, name: str, store):
        self.name = name
        self.store = store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        import torch.nn.functional as F

        if attn.spatial_norm is not None or attn.group_norm is not None or hidden_states.ndim != 3:
            raise NotImplementedError(
                f"RecordingAttnProcessor is written for Stable Diffusion's transformer attention (3-d hidden states, "
                f"no group or spatial norm); layer {self.name!r} is another kind. Attach it only to cross-attention "
                "layers of a UNet2DConditionModel, as CrossAttentionRecorder.attach does.")
        residual = hidden_states
        batch_size, _, _ = hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        if attention_mask is not None:
            sequence_length = (hidden_states if encoder_hidden_states is None else encoder_hidden_states).shape[1]
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])

        query = attn.to_q(hidden_states)  # one query per latent pixel
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)  # one key and one value per token
        value = attn.to_v(encoder_hidden_states)

        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)  # (batch, heads, pixels, head_dim)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)  # (batch, heads, tokens, head_dim)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        # The two extra lines: the probabilities that scaled_dot_product_attention computes internally, in float32
        # (in float16 a row's sum can miss 1 by 4e-4; the output below stays the model's own computation).
        probs = (query.float() @ key.float().transpose(-1, -2) / math.sqrt(head_dim)).softmax(dim=-1)
        # probs: (batch, heads, pixels, tokens)
        self.store(self.name, probs)

        # The output, exactly as AttnProcessor2_0 computes it.
        hidden_states = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=0.0,
                                                       is_causal=False)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)
        hidden_states = attn.to_out[0](hidden_states)  # linear projection
        hidden_states = attn.to_out[1](hidden_states)  # dropout
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


class CrossAttentionRecorder:
    """Keeps the cross-attention probabilities of every ``attn2`` layer at every UNet call.

    ``maps[(step, layer)]`` is a CPU tensor (batch, pixels, tokens), averaged over the heads; ``step`` counts the
    UNet's forward calls since ``attach`` (one per denoising step in a loop that batches guidance).
    ``at_steps``: record only these steps (saves memory at 512 px); None records all.
    ``batch_slice``: the part of the batch to keep; with classifier-free guidance the batch is [uncond, text],
    so ``slice(-1, None)`` keeps the text half of a single prompt.
    """

    def __init__(self, at_steps=None, batch_slice: slice = slice(None)):
        self.at_steps = None if at_steps is None else set(int(s) for s in at_steps)
        self.batch_slice = batch_slice
        self.maps = {}
        self.latent_size = None  # (h, w) of the UNet's input, read at each call
        self.step = -1
        self._unet = None
        self._saved = None
        self._hook = None

    def attach(self, unet):
        """Put a ``RecordingAttnProcessor`` on every cross-attention layer of ``unet`` (the others are untouched)."""
        if self._unet is not None:
            raise RuntimeError("This recorder is already attached to a UNet: call detach() first.")
        if not hasattr(unet, "set_attn_processor"):
            raise ValueError(f"{type(unet).__name__} has no cross-attention layers (attn2): there is no text to attend "
                             "to. Attach the recorder to Stable Diffusion's UNet2DConditionModel (pipe.unet).")
        self._saved = dict(unet.attn_processors)
        processors = {name: (RecordingAttnProcessor(name.removesuffix(".processor"), self._keep)
                             if name.endswith("attn2.processor") else proc) for name, proc in self._saved.items()}
        if not any(isinstance(p, RecordingAttnProcessor) for p in processors.values()):
            raise ValueError(f"{type(unet).__name__} has no cross-attention layers (attn2): there is no text to attend to.")
        unet.set_attn_processor(processors)
        self._hook = unet.register_forward_pre_hook(self._next_step, with_kwargs=True)
        self._unet = unet
        return self

    def detach(self):
        """Give the UNet its previous processors back."""
        if self._unet is not None:
            self._unet.set_attn_processor(self._saved)
            self._hook.remove()
        self._unet = self._saved = self._hook = None
        return self

    def reset(self):
        """Forget what was recorded (before another generation)."""
        self.maps, self.step = {}, -1
        return self

    def _next_step(self, module, args, kwargs):
        self.step += 1
        sample = args[0] if args else kwargs["sample"]
        self.latent_size = tuple(sample.shape[-2:])

    def _keep(self, name, probs):
        if self.at_steps is None or self.step in self.at_steps:
            self.maps[(self.step, name)] = probs[self.batch_slice].mean(dim=1).detach().float().cpu()

    @property
    def steps(self) -> list[int]:
        return sorted({s for s, _ in self.maps})

    @property
    def layers(self) -> list[str]:
        """Layer names in the UNet's order: down blocks, mid block, up blocks."""
        order = {"down": 0, "mid": 1, "up": 2}
        return sorted({n for _, n in self.maps}, key=lambda n: (order[n.split("_")[0]], n))

    def layer_size(self, layer: str) -> tuple[int, int]:
        """(h, w) of the latent grid a layer works on (the UNet halves it in each down block)."""
        pixels = self.maps[(self.steps[0], layer)].shape[1]
        h, w = self.latent_size
        factor = round(math.sqrt(h * w / pixels))
        return h // factor, w // factor

    def token_map(self, token: int, steps=None, layers=None, batch: int = -1):
        """Attention to ``token`` (its position in the 77 ids), averaged over ``steps`` and ``layers``
        (default: all), each layer's map upsampled to the latent size. Returns an (h, w) tensor."""
        import torch
        import torch.nn.functional as F

        if not self.maps:
            raise RuntimeError("Nothing was recorded: attach() the recorder, then run the UNet.")
        steps = self.steps if steps is None else list(steps)
        layers = self.layers if layers is None else list(layers)
        missing = [s for s in steps if (s, layers[0]) not in self.maps]
        if missing:
            raise KeyError(f"steps {missing} were not recorded; recorded: {self.steps}")
        total = torch.zeros(self.latent_size)
        for s in steps:
            for layer in layers:
                m = self.maps[(s, layer)][batch, :, token].reshape(1, 1, *self.layer_size(layer))
                total += F.interpolate(m, size=self.latent_size, mode="bilinear", align_corners=False)[0, 0]
        return total / (len(steps) * len(layers))


def prompt_tokens(tokenizer, prompt: str) -> list[tuple[int, str]]:
    """(position, token) for the start token, the prompt's tokens and the first end token."""
    ids = tokenizer(prompt).input_ids
    return [(i, tokenizer.convert_ids_to_tokens(t).replace("</w>", "")) for i, t in enumerate(ids)]
