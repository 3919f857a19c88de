"""The Whisper encoder split at a block boundary: the stem (convolutions, positions), blocks start..stop,
and the final layer norm. `encode` runs it in full, bit-identical to `model.model.encoder`; a decode
that reads cached states entering block k resumes with `encoder_resume` (asrprune.encoder_cache).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def encoder_stem(model: Any, features: torch.Tensor) -> torch.Tensor:
    """Hidden states entering encoder block 0: convolutions, GELU, positions (as WhisperEncoder.forward)."""
    enc = model.model.encoder
    x = F.gelu(enc.conv1(features))
    x = F.gelu(enc.conv2(x))
    x = x.permute(0, 2, 1)
    positions = torch.arange(enc.embed_positions.num_embeddings, device=x.device)
    return x + enc.embed_positions(positions)


def encoder_blocks(model: Any, hidden: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Hidden states entering block `stop` from those entering block `start`."""
    for layer in model.model.encoder.layers[start:stop]:
        hidden = layer(hidden, None)
    return hidden


def encoder_prefix(model: Any, features: torch.Tensor, k: int) -> torch.Tensor:
    """Hidden states entering encoder block `k` (the operations of WhisperEncoder.forward, in order)."""
    return encoder_blocks(model, encoder_stem(model, features), 0, k)


def encoder_resume(model: Any, hidden: torch.Tensor, k: int) -> torch.Tensor:
    """The encoder's output from the hidden states entering block `k`: blocks k..L-1, then layer_norm."""
    enc = model.model.encoder
    return enc.layer_norm(encoder_blocks(model, hidden, k, len(enc.layers)))


def encode(model: Any, features: torch.Tensor) -> torch.Tensor:
    """The whole encoder; bit-identical to ``model.model.encoder(features).last_hidden_state``."""
    n = len(model.model.encoder.layers)
    return encoder_resume(model, encoder_prefix(model, features, n), n)
