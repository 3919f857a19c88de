"""Shared fixtures: a tiny randomly initialised Whisper (for unit tests only, never reported as a result),
and the real tiny.en and the default config's test sets, each built once per test run in a temporary
folder (never read from the checkout's results/)."""

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


def experiment_config(workdir: Path) -> Path:
    """The config file a finished run's experiment came from (tiny_run copies the tiny config there).

    Editing *this* file is editing the experiment (results/default/experiment.json records it):
    Snakemake reruns what changed. Another file with another definition under the same name is
    another experiment and is refused (asrprune.layout.check_experiment_record).
    """
    return workdir.parent / f"{workdir.name}.yaml"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny config run once to completion, shared by every workflow test that only reads it."""
    import shutil
    import subprocess

    workdir = tmp_path_factory.mktemp("tiny_run")
    shutil.copyfile(TINY_CONFIG, experiment_config(workdir))
    out = subprocess.run(snakemake_cmd(workdir, experiment_config(workdir)), capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    return workdir


# --------------------------------------------------------------------------------------------
# Real weights and real test sets, built once per test run


def default_config() -> dict:
    """The embedded default config (config.yaml), validated as the workflow validates it."""
    from asrprune.config import validate_config
    from asrprune.strict_yaml import load_yaml

    return validate_config(load_yaml(REPO / "config.yaml"))


DEFAULT_TEST_SETS = ("ivr", "tts_clean", "tts_noisy")


def skip_outside_ci(reason: str) -> None:
    """Skip for a reason that `make setup` rules out; under CI (CI set) the same reason is a failure."""
    import os

    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI runs `make setup`, which provides it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tiny_en_dir(tmp_path_factory) -> Path:
    """The real tiny.en converted once per test run, as the default run's prepare_model converts it."""
    from asrprune.models.prepare import prepare_model

    out = tmp_path_factory.mktemp("real_models") / "tiny.en"
    prepare_model("tiny.en", default_config()["models"]["tiny.en"], out)
    return out


@pytest.fixture(scope="session")
def tiny_en(tiny_en_dir):
    """(model, processor, decoder prompt) of the converted tiny.en; a test that prunes works on a copy."""
    from asrprune.models.load import generation_prompt_ids, load_model

    model, processor = load_model(tiny_en_dir)
    return model, processor, generation_prompt_ids(model)


@pytest.fixture(scope="session")
def default_test_sets(tmp_path_factory) -> dict[str, Path]:
    """The default config's test sets (ivr, tts_clean, tts_noisy), built once per test run."""
    from asrprune import layout
    from asrprune.datasets import build_dataset

    config = default_config()
    out = tmp_path_factory.mktemp("default_data")
    paths = {}
    for name in DEFAULT_TEST_SETS:  # tts_noisy degrades tts_clean: built after it, in the same folder
        paths[name] = out / f"{name}.parquet"
        build_dataset(name, layout.dataset_spec(config, name), paths[name], threads=2)
    return paths
