"""A prepared model directory loaded for decoding: its manifest, its files checked against it, the
model and processor in eval mode, and the generation config and decoder prompt it decodes with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from asrprune.components import model_is_multilingual
from asrprune.io import MANIFEST_FILE, read_manifest, sha256_file
from asrprune.models.checkpoint import WEIGHTS_FILE, check_loading_info


def read_model_manifest(model_dir: str | Path) -> dict[str, Any]:
    """The manifest.json of a directory prepare_model wrote (asrprune.io.read_manifest)."""
    return read_manifest(model_dir, "a model directory written by prepare_model")


def known_depth(spec: dict[str, Any], prepared: str | Path | None = None) -> tuple[int, int] | None:
    """(encoder layers, decoder layers) of the model a config's `models:` entry `spec` names, or None while
    unknown (for the checks before any job, asrprune.preflight).

    Known without running anything for a `local` model (its config.json) and for any model that
    prepare_model already wrote from this very spec (its manifest.json in `prepared`, the model's
    store folder); a hub or CTranslate2 model is known once it has been prepared.
    """
    candidates = []
    if spec.get("source") == "local" and spec.get("path"):
        candidates.append((Path(spec["path"]) / "config.json", None))
    if prepared is not None:
        candidates.append((Path(prepared) / MANIFEST_FILE, spec))
    for path, must_match in candidates:
        try:
            data = read_manifest(path.parent) if path.name == MANIFEST_FILE else json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if must_match is not None:
            if data.get("source") != must_match:
                continue
            data = data.get("config") or {}
        try:
            return int(data["encoder_layers"]), int(data["decoder_layers"])
        except (KeyError, TypeError, ValueError):
            continue
    return None


def check_model_files(model_dir: str | Path) -> None:
    """Every file the model manifest lists has the sha256 it records (a prepared model is bound to its
    content: an edited or replaced weight file is refused, naming it). A directory without a
    manifest (not written by prepare_model) is not checked here."""
    model_dir = Path(model_dir)
    if not (model_dir / MANIFEST_FILE).is_file():
        return
    files = read_model_manifest(model_dir).get("files") or {}
    for rel, want in sorted(files.items()):
        path = model_dir / rel
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file, but {model_dir / MANIFEST_FILE} lists it; expected the "
                                    "model directory prepare_model wrote (delete it to rebuild it)")
        got = sha256_file(path)
        if got != want:
            raise ValueError(f"{path}: sha256 {got} differs from {want} recorded in {model_dir / MANIFEST_FILE}; "
                             "expected the file prepare_model wrote (it was edited or replaced: delete the model "
                             "directory to rebuild it)")


def configure_generation(model: Any, language: str = "en", task: str = "transcribe") -> None:
    """Set the generation config: language/task forced only for multilingual checkpoints, no timestamps.

    transformers 5 builds the decoder prompt from these fields; the deprecated `forced_decoder_ids`
    (present in older hub configs) is dropped so it cannot override them. English-only models must
    not get a language (generate raises), and multilingual base degenerates without one.
    """
    gc = model.generation_config
    gc.forced_decoder_ids = None
    gc.return_timestamps = False
    if model_is_multilingual(model):
        gc.language, gc.task = language, task
    else:
        gc.language, gc.task = None, None


def load_model(model_dir: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """Load a prepared directory as (eval-mode model, WhisperProcessor), weights from safetensors only."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    weights = Path(model_dir) / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no such file; expected a model directory written by prepare_model")
    try:
        model, info = WhisperForConditionalGeneration.from_pretrained(
            str(model_dir), dtype=dtype, use_safetensors=True, output_loading_info=True)
    except Exception as exc:  # safetensors' SafetensorError on a truncated/corrupt file is no OSError
        if type(exc).__name__ != "SafetensorError":
            raise
        raise ValueError(f"{weights}: not a readable safetensors file ({exc}); expected the float32 weights "
                         "prepare_model wrote (delete the model directory to rebuild it)") from exc
    check_loading_info(model_dir, info)
    check_model_files(model_dir)  # after loading: a truncated file gets the clearer error above
    model = model.to(device).eval()
    processor = WhisperProcessor.from_pretrained(str(model_dir))
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    configure_generation(model)
    return model, processor


def generation_prompt_ids(model: Any) -> list[int]:
    """The decoder prompt `generate` uses: <|sot|> [<|lang|> <|task|>] <|notimestamps|>."""
    gc = model.generation_config
    ids = [int(gc.decoder_start_token_id)]
    if model_is_multilingual(model):
        language = getattr(gc, "language", None) or "en"
        ids.append(int(gc.lang_to_id[f"<|{language}|>"]))
        ids.append(int(gc.task_to_id[getattr(gc, "task", None) or "transcribe"]))
    ids.append(int(gc.no_timestamps_token_id))
    return ids
