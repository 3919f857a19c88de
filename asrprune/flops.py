"""Analytic FLOPs of a (pruned) Whisper: encoder per 30 s window, decoder per generated token.

Assumptions, chosen to be simple and stated rather than measured:
- 2 FLOPs per multiply-accumulate; a weight matrix applied to one position costs 2·nnz(W) FLOPs,
  so a pruned model is counted as if sparse kernels skipped every zero weight (an upper bound on
  the saving that dense kernels actually realize: none).
- The encoder always sees the full 30 s window: conv1 over 3000 mel frames, conv2 (stride 2) and
  every block over 1500 frames; attention scores QKᵀ and the weighted sum AV cost 2·T²·d MACs
  per block, dense whatever the weights.
- The decoder runs with a key/value cache at a typical context of 32 tokens: per token and block
  the self-attention projections, scores over the context, the cross-attention query and output
  projections, scores over the 1500 encoder frames, and the FFN; then the output projection
  (tied to the token embedding, so pruning embeddings shrinks it). The cross-attention keys and
  values of the encoder output are computed once per window and reported separately.
- Biases, LayerNorms, softmax, GELU, the embedding lookup and positional embeddings are left out
  (well under 1 % of the total).
"""

from __future__ import annotations

import torch
from torch import nn

DECODER_CONTEXT = 32


def _nnz_counter(model: nn.Module, masks: dict[str, torch.Tensor] | None):
    """Name -> nonzero weight count after masks (None: the dense count, numel)."""
    params = dict(model.named_parameters())

    def nnz(name: str) -> int:
        p = params[name].detach()
        if masks is None:
            return p.numel()
        if name in masks:
            return int(torch.count_nonzero(p * masks[name]))
        return int(torch.count_nonzero(p))

    return nnz


def whisper_macs(model: nn.Module, masks: dict[str, torch.Tensor] | None, decoder_context: int = DECODER_CONTEXT) -> dict[str, int]:
    """Multiply-accumulates: encoder per window, decoder per token, cross K/V per window."""
    cfg = model.config
    d, frames = cfg.d_model, cfg.max_source_positions
    nnz = _nnz_counter(model, masks)
    enc = 2 * frames * nnz("model.encoder.conv1.weight") + frames * nnz("model.encoder.conv2.weight")
    for i in range(cfg.encoder_layers):
        p = f"model.encoder.layers.{i}."
        proj = sum(nnz(p + f"self_attn.{m}_proj.weight") for m in ("q", "k", "v", "out"))
        ffn = nnz(p + "fc1.weight") + nnz(p + "fc2.weight")
        enc += frames * (proj + ffn) + 2 * frames * frames * d
    dec, cross_kv = 0, 0
    for i in range(cfg.decoder_layers):
        p = f"model.decoder.layers.{i}."
        dec += sum(nnz(p + f"self_attn.{m}_proj.weight") for m in ("q", "k", "v", "out"))
        dec += 2 * decoder_context * d
        dec += nnz(p + "encoder_attn.q_proj.weight") + nnz(p + "encoder_attn.out_proj.weight")
        dec += 2 * frames * d
        dec += nnz(p + "fc1.weight") + nnz(p + "fc2.weight")
        cross_kv += frames * (nnz(p + "encoder_attn.k_proj.weight") + nnz(p + "encoder_attn.v_proj.weight"))
    dec += nnz("model.decoder.embed_tokens.weight")  # the tied output projection
    return {"encoder_per_window": enc, "decoder_per_token": dec, "cross_kv_per_window": cross_kv}


def whisper_flops(model: nn.Module, masks: dict[str, torch.Tensor] | None = None, decoder_context: int = DECODER_CONTEXT) -> dict:
    """Dense and pruned FLOPs (2 per MAC) with the assumptions of the module doc, for the manifest."""
    dense = whisper_macs(model, None, decoder_context)
    pruned = whisper_macs(model, masks or {}, decoder_context)
    out: dict = {"assumptions": "2 FLOPs/MAC; nonzero weights only; 30 s window (1500 frames); "
                 f"decoder per token with KV cache at context {decoder_context}; attention scores dense; "
                 "cross-attention K/V once per window; biases, norms, activations excluded",
                 "decoder_context": decoder_context}
    for key, scale, unit in (
        ("encoder_per_window", 1e9, "gflops"),
        ("cross_kv_per_window", 1e9, "gflops"),
        ("decoder_per_token", 1e6, "mflops"),
    ):
        out[f"{key}_{unit}_dense"] = 2 * dense[key] / scale
        out[f"{key}_{unit}"] = 2 * pruned[key] / scale
        out[f"{key}_ratio"] = pruned[key] / dense[key] if dense[key] else 1.0
    return out
