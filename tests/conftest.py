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


TINY_CONFIG = REPO / "tests" / "configs" / "tiny.yaml"


def snakemake_cmd(workdir: Path, config: Path = TINY_CONFIG, *args: str) -> list[str]:
    """The command the workflow tests run: this repository's Snakefile on `workdir`, 2 cores."""
    import sys

    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(config), "--cores", "2", *args]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny config run once to completion, shared by every workflow test that only reads it."""
    import subprocess

    workdir = tmp_path_factory.mktemp("tiny_run")
    out = subprocess.run(snakemake_cmd(workdir), capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    return workdir
