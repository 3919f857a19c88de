"""What makes a Hugging Face directory a whole Whisper checkpoint: its weight file's name, a config of
`model_type: whisper`, and every tensor loaded at its shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WEIGHTS_FILE = "model.safetensors"


def check_whisper_config(where: str | Path, config_json: str | Path) -> None:
    """Refuse a checkpoint whose config.json does not say `model_type: whisper`, naming the path.

    A BERT (or any other) directory would otherwise be built as a Whisper from whatever keys it
    shares, and fail later with an error about padding indices that names neither.
    """
    try:
        model_type = json.loads(Path(config_json).read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(f"{where}: config.json is not a readable JSON object ({exc}); expected a Whisper "
                         "checkpoint's config") from exc
    if model_type != "whisper":
        raise ValueError(f"{where}: config.json has model_type {model_type!r}; expected 'whisper' (a Whisper "
                         "checkpoint: WhisperForConditionalGeneration weights, tokenizer and feature extractor)")


def check_loading_info(where: str | Path, info: dict[str, Any]) -> None:
    """Refuse a checkpoint that lacks tensors (transformers would initialise them randomly) or whose
    tensors have other shapes, listing the names."""
    problems = []
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        problems.append(f"{len(missing)} tensor(s) missing, which would be randomly initialised: "
                        + ", ".join(missing[:12]) + (" ..." if len(missing) > 12 else ""))
    mismatched = sorted(str(m[0]) if isinstance(m, (tuple, list)) else str(m) for m in info.get("mismatched_keys") or [])
    if mismatched:
        problems.append(f"{len(mismatched)} tensor(s) of another shape: " + ", ".join(mismatched[:12]))
    if problems:
        raise ValueError(f"{where}: incomplete Whisper checkpoint: {'; '.join(problems)}; expected every tensor of "
                         "WhisperForConditionalGeneration for this config")
