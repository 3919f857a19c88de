"""The settings a stage runs with, typed, their defaults read from the one place that declares them:
`schemas/config.schema.yaml` (the schema a config is validated and filled against).

- `DecodeSettings` (`decoding:`): how hypotheses are produced; every one can change a transcript, so
  they are the decode rule's params and are recorded with every table row.
- `ExecutionSettings` (`execution:`): how the run executes (the encoder cache), never what it
  computes; read at run time, never a rule parameter, never recorded as decoding metadata.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import torch


class ConfigError(ValueError):
    """A config (or claims) file is invalid; the message names the key, its value and what was expected."""


# schemas/config.schema.yaml, through the link beside this file (a wheel carries the file itself)
SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


@cache
def schema() -> dict[str, Any]:
    """The config schema (read once)."""
    return yaml.safe_load(SCHEMA_PATH.read_text())


def schema_defaults(section: str) -> dict[str, Any]:
    """The schema's default of every key of the top-level `section` that declares one."""
    props = schema()["properties"][section]["properties"]
    return {name: sub["default"] for name, sub in props.items() if isinstance(sub, dict) and "default" in sub}


def dataset_option(spec: dict[str, Any], key: str) -> Any:
    """A data set entry's `key`: as the config gives it, else the schema's default. A default marked
    x-applied-when-read is applied only here, never written into the config, so a data set's store
    key is what its config wrote (an unmarked one, `role`, validation has filled in already)."""
    if key in spec:
        return spec[key]
    return schema()["$defs"]["dataset"]["properties"][key]["default"]


def schema_enum(section: str, key: str) -> tuple[Any, ...]:
    """The values the schema allows for `section.key`."""
    return tuple(schema()["properties"][section]["properties"][key]["enum"])


_DECODING = schema_defaults("decoding")
_EXECUTION = schema_defaults("execution")
BACKENDS = schema_enum("decoding", "backend")
LANGUAGES = schema_enum("decoding", "language")


def _from(cls, cfg: dict[str, Any] | None):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in (cfg or {}).items() if k in names})


@dataclass(frozen=True)
class DecodeSettings:
    """How hypotheses are produced (`decoding:`); recorded with every table row."""

    batch_size: int = _DECODING["batch_size"]
    num_beams: int = _DECODING["num_beams"]
    device: str = _DECODING["device"]
    gpu_dtype: str = _DECODING["gpu_dtype"]
    max_tokens_per_second: float = _DECODING["max_tokens_per_second"]
    max_tokens_margin: int = _DECODING["max_tokens_margin"]
    backend: str = _DECODING["backend"]
    # en: a multilingual model is told <|en|><|transcribe|>; auto: it detects the language of each
    # utterance and transcribes (what the authors' `generate` call did with whisper-small's hub
    # generation config, forced_decoder_ids [[1, None], [2, <|transcribe|>]]). English-only models
    # have no language token either way.
    language: str = _DECODING["language"]

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"decoding.backend = {self.backend!r}: expected one of {list(BACKENDS)}")
        if self.language not in LANGUAGES:
            raise ValueError(f"decoding.language = {self.language!r}: expected one of {list(LANGUAGES)}")

    @classmethod
    def from_config(cls, decoding: dict[str, Any] | None) -> DecodeSettings:
        """From the config's `decoding:` mapping (keys it lacks take the schema's default)."""
        return _from(cls, decoding)


@dataclass(frozen=True)
class ExecutionSettings:
    """How the run executes (`execution:`): changing these reruns no job."""

    encoder_cache: bool = _EXECUTION["encoder_cache"]
    encoder_cache_mb: float = _EXECUTION["encoder_cache_mb"]

    @classmethod
    def from_config(cls, execution: dict[str, Any] | None) -> ExecutionSettings:
        """From the config's `execution:` mapping (keys it lacks take the schema's default)."""
        return _from(cls, execution)


def token_limit(duration_s: float, settings: DecodeSettings, ceiling: int) -> int:
    """New-token budget that scales with the audio: speech runs at ~3-4 tokens/s, so a hypothesis
    far longer than that is a runaway loop, and stopping it early saves time without changing
    any hypothesis that ends normally."""
    return min(ceiling, math.ceil(duration_s * settings.max_tokens_per_second) + settings.max_tokens_margin)


def resolve_device(setting: str) -> torch.device:
    """The torch device a `device:` setting (decoding, calibration) names: `auto` picks CUDA when present,
    else CPU; asking for CUDA without one is an error."""
    import torch  # here: the settings are read by torch-free planning too

    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("decoding.device = 'cuda' but no CUDA device is visible: expected a GPU or device 'auto'/'cpu'")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)
