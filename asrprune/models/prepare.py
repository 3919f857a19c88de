"""prepare_model: a model source written as a standalone float32 Hugging Face Whisper directory with
its manifest.json (files and their sha256, architecture numbers, versions, provenance)."""

from __future__ import annotations

import importlib.metadata as md
import logging
from pathlib import Path
from typing import Any

import torch

from asrprune import ct2_convert
from asrprune.components import model_is_multilingual
from asrprune.io import MANIFEST_FILE, atomic_dir, sha256_file, write_json
from asrprune.models.checkpoint import WEIGHTS_FILE
from asrprune.models.sources import load_source

log = logging.getLogger(__name__)


def config_summary(config: Any) -> dict[str, int]:
    """The architecture numbers other stages read from the manifest."""
    keys = (
        "d_model",
        "encoder_layers",
        "decoder_layers",
        "encoder_attention_heads",
        "decoder_attention_heads",
        "encoder_ffn_dim",
        "decoder_ffn_dim",
        "vocab_size",
        "max_source_positions",
        "max_target_positions",
    )
    out = {k: int(getattr(config, k)) for k in keys}
    out["n_mels"] = int(config.num_mel_bins)
    return out


def _version(dist: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def software_versions() -> dict[str, str | None]:
    """Versions of the libraries that shape the saved files."""
    return {d: _version(d) for d in ("torch", "transformers", "tokenizers", "safetensors", "ctranslate2")}


def count_params(model: torch.nn.Module) -> int:
    """Number of unique parameters (`parameters()` yields a tied tensor once)."""
    return sum(p.numel() for p in model.parameters())


def prepare_model(name: str, spec: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Write `out_dir` as a standalone float32 HF Whisper directory plus manifest.json; return the manifest."""
    model, tokenizer, feature_extractor, extras = load_source(spec)
    model = model.to(torch.float32)
    vocab = model.get_input_embeddings().weight.shape[0]
    ct2_convert.check_vocab_size(vocab, len(tokenizer), True, f"model {name}")
    if feature_extractor.feature_size != model.config.num_mel_bins:
        raise ValueError(
            f"model {name}: feature extractor has {feature_extractor.feature_size} mel bins, "
            f"the model {model.config.num_mel_bins}"
        )
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)  # transformers 5 always writes safetensors
        tokenizer.save_pretrained(tmp)
        feature_extractor.save_pretrained(tmp)
        files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        if WEIGHTS_FILE not in files:
            raise RuntimeError(f"save_pretrained wrote no {WEIGHTS_FILE} (files: {sorted(files)})")
        manifest = {
            "name": name,
            "source": dict(spec),
            "files": files,
            "weights_sha256": files[WEIGHTS_FILE],
            "n_params": count_params(model),
            "multilingual": model_is_multilingual(model),
            "config": config_summary(model.config),
            "tied": ["proj_out.weight = model.decoder.embed_tokens.weight"],
            "versions": {**software_versions(), **extras.get("model_packages", {})},
            **extras,
        }
        write_json(manifest, tmp / MANIFEST_FILE)
    log.info("prepared %s: %d parameters, weights %s", name, manifest["n_params"], manifest["weights_sha256"])
    return manifest
