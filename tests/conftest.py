"""Shared fixtures: a tiny randomly initialised Whisper (for unit tests only, never reported as a result)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def make_tiny_whisper(seed: int = 0, vocab_size: int = 80):
    """A 2+2-layer random Whisper with the real special-token layout shrunk to a small vocabulary."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=80,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=1500,
        max_target_positions=64,
        pad_token_id=vocab_size - 4,
        bos_token_id=vocab_size - 4,
        eos_token_id=vocab_size - 4,
        decoder_start_token_id=vocab_size - 3,
        suppress_tokens=[],
        begin_suppress_tokens=[],
    )
    model = WhisperForConditionalGeneration(config).eval()
    return model


@pytest.fixture
def tiny_whisper():
    return make_tiny_whisper()
