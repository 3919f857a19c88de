"""The fast decoder backend: a batched greedy loop over Whisper's decoder modules with a key/value cache.

It runs the very same tensor operations as `model.generate`'s greedy search, in the same order and
with the same batch shapes, and skips only what costs time without changing a token
(asrprune.decode's module docstring says what and why). `fast_unsupported` names the settings it
cannot reproduce; decoding falls back to `generate` (asrprune.generation) for those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from asrprune.settings import DecodeSettings


# Generation settings that would make `generate` add a logits processor the fast loop does not have,
# with the values that leave them off.
_NEUTRAL = {
    "repetition_penalty": (None, 1.0),
    "encoder_repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "sequence_bias": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "forced_decoder_ids": (None,),
    "exponential_decay_length_penalty": (None,),
    "no_speech_threshold": (None,),
    "logit_threshold": (None,),
}


def fast_unsupported(model: Any, settings: DecodeSettings, generate_kwargs: dict[str, Any] | None = None) -> str | None:
    """Why the fast loop cannot reproduce `generate` for this model and these settings, or None."""
    if settings.num_beams != 1:
        return f"num_beams = {settings.num_beams} (the fast loop is greedy)"
    if generate_kwargs:
        return f"extra generate arguments {sorted(generate_kwargs)}"
    attn = getattr(model.config, "_attn_implementation", None)
    if attn != "sdpa":
        return f"attention implementation {attn!r} (the fast loop reproduces 'sdpa')"
    gc = model.generation_config
    for name, neutral in _NEUTRAL.items():
        value = getattr(gc, name, None)
        if value not in neutral and not (isinstance(value, (list, tuple)) and len(value) == 0):
            return f"generation_config.{name} = {value!r}"
    return None


@dataclass(frozen=True)
class LoopConstants:
    """What every batch of a job shares: the suppress-token masks and the vocabulary projection."""

    always: torch.Tensor  # bool [vocab]: suppressed at every step
    first: torch.Tensor  # bool [vocab]: suppressed at the first generated step
    vocab_t: torch.Tensor | None  # proj_out.weight transposed and contiguous (CPU), None: F.linear

    def logits(self, model: Any, last: torch.Tensor) -> torch.Tensor:
        """Float logits [rows, vocab] of the decoder's final hidden states [rows, d_model]."""
        out = model.proj_out(last) if self.vocab_t is None else torch.mm(last, self.vocab_t)
        return out.float()


def loop_constants(model: Any, device: torch.device) -> LoopConstants:
    """The job-wide constants of the fast loop (the transposed copy costs one pass over the embedding)."""
    always, first = suppress_masks(model, device)
    w = model.proj_out.weight
    vocab_t = w.detach().t().contiguous() if device.type == "cpu" and model.proj_out.bias is None else None
    return LoopConstants(always, first, vocab_t)


def suppress_masks(model: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean vocabulary masks: tokens suppressed at every step, and at the first generated step."""
    gc = model.generation_config
    vocab = model.config.vocab_size
    always = torch.zeros(vocab, dtype=torch.bool, device=device)
    if gc.suppress_tokens:
        always[list(gc.suppress_tokens)] = True
    first = always.clone()
    if gc.begin_suppress_tokens:
        first[list(gc.begin_suppress_tokens)] = True
    return always, first


@torch.inference_mode()
def greedy_decode(
    model: Any,
    encoder_hidden: torch.Tensor,
    prompt_ids: list[int] | list[list[int]],
    limits: list[int],
    constants: LoopConstants | None = None,
    compact: bool | None = None,
) -> list[list[int]]:
    """Greedy tokens after the prompt for each row: up to its eos (included) or its token limit.

    `prompt_ids` is one prompt for every row, or one per row (all of the same length: the detected
    language differs by row under `decoding.language: auto`).

    Mirrors `generate`'s greedy search over WhisperForConditionalGeneration op for op (see the module
    docstring), so the tokens are those `generate(..., max_new_tokens=max(limits))` gives, truncated
    at each row's own limit. With `compact` (default: on a CPU), rows that have ended are left out
    of cross-attention: the tokens are the same (checked on CPU kernels, which compute attention row
    by row; GPU attention kernels may split the work by batch size, so there it stays off).
    """
    dec = model.model.decoder
    layers = dec.layers
    device = encoder_hidden.device
    compact = device.type == "cpu" if compact is None else compact
    batch = encoder_hidden.shape[0]
    eos = int(model.generation_config.eos_token_id)
    pad = model.generation_config.pad_token_id
    pad = eos if pad is None else int(pad)
    constants = constants if constants is not None else loop_constants(model, device)
    always, first = constants.always, constants.first
    n_heads = layers[0].self_attn.num_heads
    head_dim = layers[0].self_attn.head_dim

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, -1, n_heads, head_dim).transpose(1, 2).contiguous()

    # Cross-attention keys and values: computed once per batch (generate does the same at step 0).
    cross_all = [(heads(l.encoder_attn.k_proj(encoder_hidden)), heads(l.encoder_attn.v_proj(encoder_hidden))) for l in layers]
    cross, active = cross_all, None  # `active`: the rows cross-attention is computed for (None: all)
    past: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(layers)
    limit = torch.tensor(limits, device=device)
    running = torch.ones(batch, dtype=torch.bool, device=device)
    prompts = prompt_ids if prompt_ids and isinstance(prompt_ids[0], list) else [prompt_ids] * batch
    x = torch.tensor(prompts, dtype=torch.long, device=device)
    pos, steps = 0, []
    for step in range(max(limits)):
        width = x.shape[1]
        hidden = dec.embed_tokens(x) + dec.embed_positions.weight[pos : pos + width]
        for i, layer in enumerate(layers):
            sa, ca = layer.self_attn, layer.encoder_attn
            residual = hidden
            h = layer.self_attn_layer_norm(hidden)
            q = heads(sa.q_proj(h) * sa.scaling)
            k, v = heads(sa.k_proj(h)), heads(sa.v_proj(h))
            if past[i] is not None:
                k = torch.cat([past[i][0], k], dim=-2)
                v = torch.cat([past[i][1], v], dim=-2)
            past[i] = (k, v)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, scale=1.0, is_causal=width > 1)
            a = a.transpose(1, 2).contiguous().reshape(batch, width, -1).contiguous()
            hidden = residual + sa.out_proj(a)

            residual = hidden
            h = layer.encoder_attn_layer_norm(hidden)
            q = heads(ca.q_proj(h) * ca.scaling)
            if active is None:
                a = F.scaled_dot_product_attention(q, cross[i][0], cross[i][1], attn_mask=None, dropout_p=0.0, scale=1.0)
            else:
                a = torch.zeros_like(q).index_copy_(0, active, F.scaled_dot_product_attention(
                    q.index_select(0, active), cross[i][0], cross[i][1], attn_mask=None, dropout_p=0.0, scale=1.0))
            a = a.transpose(1, 2).contiguous().reshape(batch, width, -1).contiguous()
            hidden = residual + ca.out_proj(a)

            residual = hidden
            h = layer.final_layer_norm(hidden)
            hidden = residual + layer.fc2(layer.activation_fn(layer.fc1(h)))
        # Only the last position's logits are used; layer norm works row by row, so normalizing that
        # position alone gives the same values.
        logits = constants.logits(model, dec.layer_norm(hidden[:, -1, :]))
        logits.masked_fill_(first if step == 0 else always, float("-inf"))
        token = torch.where(running, logits.argmax(-1), pad)
        steps.append(token)
        running &= token != eos
        pos += width
        alive = (running & (limit > step + 1)).nonzero().flatten()
        if len(alive) == 0:
            break
        if compact and len(alive) <= 0.75 * (batch if active is None else len(active)):
            # Rows that ended stop costing cross-attention (reading 1500 keys and values per layer
            # and step is most of a step's memory traffic). Attention is computed per row, so the
            # other rows' values do not change; every matrix product keeps the full batch, whose
            # shape (not the values of ended rows) decides the kernels and so the bits.
            active = alive
            cross = [(k.index_select(0, alive), v.index_select(0, alive)) for k, v in cross_all]
        x = token[:, None]
    out = []
    for row, lim in zip(torch.stack(steps, dim=1).tolist(), limits):
        row = row[:lim]
        out.append(row[: row.index(eos) + 1] if eos in row else row)
    return out
