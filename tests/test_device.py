"""Device resolution shared by the sensitivity and decode stages, checked without a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asrprune.settings import resolve_device

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("visible,setting,expected", [
    (True, "auto", "cuda"), (False, "auto", "cpu"), (True, "cpu", "cpu"), (False, "cpu", "cpu"), (True, "cuda", "cuda"),
])
def test_auto_means_cuda_when_visible(monkeypatch, visible, setting, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: visible)
    assert resolve_device(setting).type == expected


def test_cuda_without_a_gpu_is_a_named_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA device is visible"):
        resolve_device("cuda")


def test_the_sensitivity_rule_passes_the_configured_device():
    """The rule used to pass no device, so the script fell back to CPU while the paper config reserved a GPU."""
    from asrprune.config import validate_config
    from asrprune.strict_yaml import load_yaml

    config = validate_config(load_yaml(REPO / "config.yaml"))
    assert config["calibration"]["device"] == "auto"
    rule = open(REPO / "rules/sensitivity.smk").read()
    assert 'device=config["calibration"]["device"]' in rule
    assert 'device=str(job.params["device"])' in open(REPO / "asrprune/stages/sensitivity.py").read()
