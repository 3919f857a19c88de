"""Datasets from outside this machine's Debian packages: HF-style audio Parquet and local manifests.

Both decode with soundfile (never torchcodec: `datasets` >= 4 decodes through it, so audio is read
with `Audio(decode=False)`), resample exactly to 16 kHz, downmix to mono and re-encode as FLAC.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from asrprune.audio import MAX_SECONDS, PCM_PEAK, SAMPLE_RATE, decode_audio, encode_flac, peak_normalize
from asrprune.datasets.manifest import audio_path, local_parquet_files, read_manifest_rows
from asrprune.datasets.offline import max_utts_of
from asrprune.datasets.sentences import normalize_text, ranked
from asrprune.settings import dataset_option

log = logging.getLogger(__name__)


def text_sentence_id(text: str) -> str:
    """sentence_id of an external transcript: a hash of its normalized text (shared by re-readings)."""
    key = normalize_text(text) or text.strip()
    return "t-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _check_ids_texts(ids: list[str], texts: list[Any], where: str) -> None:
    """Unique non-empty ids and non-empty string transcripts, or ValueError naming the offender."""
    for i, t in zip(ids, texts):
        if not i.strip():
            raise ValueError(f"{where}: an empty id; expected non-empty ids")
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"{where}: utterance {i!r} has transcript {t!r}; expected non-empty text")
    dups = sorted(k for k, c in Counter(ids).items() if c > 1)
    if dups:
        raise ValueError(f"{where}: duplicate ids {dups[:5]}; expected unique ids")


def unscorable(texts: list[str]) -> list[int]:
    """Positions of transcripts with no word left under the scoring normalizers ("...", emoji, "[noise]").

    Such a reference has no word to err on: WER over it is undefined, and in a set it inflates
    the other utterances' insertions. Both normalizers count: `wer` and `wer_basic` use them.
    """
    from asrprune.metrics import normalize_basic, normalize_english

    return [k for k, t in enumerate(texts) if not normalize_english(t) or not normalize_basic(t)]


def _drop_unscorable(ids: list[str], texts: list[str], spec: dict, where: str) -> tuple[list[int], list[str]]:
    """Positions to keep and the ids left out: transcripts that normalize to nothing are refused,
    or with `on_empty_reference: skip` left out (and listed in the provenance)."""
    policy = dataset_option(spec, "on_empty_reference")
    if policy not in ("error", "skip"):
        raise ValueError(f"{where}: on_empty_reference is {policy!r}; expected 'error' or 'skip'")
    bad = unscorable(texts)
    if bad and policy == "error":
        k = bad[0]
        raise ValueError(f"{where}: utterance {ids[k]!r} has transcript {texts[k]!r}, which normalizes to no words; "
                         f"expected at least one word to score (or set `on_empty_reference: skip` to leave such "
                         f"utterances out; {len(bad)} in all)")
    skip = set(bad)
    return [k for k in range(len(ids)) if k not in skip], sorted(ids[k] for k in bad)


def _pick_rows(ids: list[str], spec: dict, load: Any, where: str,
               source_of: Any = None) -> tuple[list[dict], list[str]]:
    """Decode utterances in seeded random order until max_utts are kept.

    `load(i)` returns (audio bytes, text) of row i; `source_of(i)`, when given, the file it came
    from (named when the audio is truncated). Over-30-s audio raises unless the spec says
    `on_long: skip`; skipped ids are returned so the provenance records them.
    """
    n = max_utts_of(spec)
    on_long = dataset_option(spec, "on_long")
    if on_long not in ("error", "skip"):
        raise ValueError(f"{where}: on_long is {on_long!r}; expected 'error' or 'skip'")
    index = {u: k for k, u in enumerate(ids)}
    rows, skipped = [], []
    for utt in ranked(ids, int(dataset_option(spec, "seed"))):
        if n is not None and len(rows) >= n:
            break
        data, text = load(index[utt])
        source = str(source_of(index[utt])) if source_of else None
        x = peak_normalize(decode_audio(data, name=f"{where}: {utt}", max_seconds=None, source=source), PCM_PEAK)
        seconds = len(x) / SAMPLE_RATE
        if seconds > MAX_SECONDS:
            if on_long == "skip":
                skipped.append(utt)
                continue
            raise ValueError(f"{where}: {utt}: audio is {seconds:.2f} s long; at most {MAX_SECONDS:g} s "
                             "is accepted (never truncated; set `on_long: skip` to leave such utterances out)")
        rows.append(dict(id=utt, audio=encode_flac(x), duration_s=seconds, text=text.strip(),
                         sentence_id=text_sentence_id(text)))
    return rows, sorted(skipped)


# --------------------------------------------------------------------------------------------------
# HF audio Parquet (ESB test sets, Common Voice mirrors, ...)


def _audio_bytes(cell: Any, utt: str, base: Path | None) -> bytes:
    """Bytes of one HF audio cell ({bytes, path} struct, or plain binary)."""
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell)
    if isinstance(cell, dict):
        if cell.get("bytes"):
            return cell["bytes"]
        path = cell.get("path")
        if path and base is not None and (base / path).is_file():
            return (base / path).read_bytes()
        raise ValueError(f"{utt}: audio cell has no bytes (path {path!r} not found); expected embedded bytes")
    raise ValueError(f"{utt}: audio cell is {type(cell).__name__}; expected a {{bytes, path}} struct or binary")


def _check_columns(names: list[str], wanted: dict[str, str | None], where: str) -> None:
    for role, col in wanted.items():
        if col is not None and col not in names:
            raise ValueError(f"{where}: no {role} column {col!r}; columns are {names}")


def _utf8_column(table: pa.Table, col: str, ids: list[str] | None, where: str) -> list[Any]:
    """Values of a column; a string column with invalid UTF-8 raises ValueError naming the row."""
    column = table.column(col)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column.to_pylist()
    try:
        column.validate(full=True)  # Arrow does not check UTF-8 when reading Parquet
    except pa.ArrowInvalid:
        raw = column.cast(pa.large_binary()).to_pylist()
        for k, value in enumerate(raw):
            try:
                if value is not None:
                    value.decode("utf-8")
            except UnicodeDecodeError as exc:
                row = repr(ids[k]) if ids else f"row {k}"
                raise ValueError(f"{where}: {col} of utterance {row} is not valid UTF-8 ({value[:40]!r}, "
                                 f"byte {exc.start}); expected UTF-8 text") from None
        raise
    return column.to_pylist()


def _datasets_table(target: str, split: str, cols: list[str], spec: dict) -> pa.Table:
    """Columns `cols` of a split loaded through `datasets.load_dataset`, audio left undecoded.

    `target` is a hub repo id (or a local dataset directory); with `data_files` the generic
    "parquet" builder reads those files instead.
    """
    import datasets

    audio_col = dataset_option(spec, "audio_column")
    if spec.get("data_files"):
        ds = datasets.load_dataset("parquet", data_files=spec["data_files"], split=split)
    else:
        ds = datasets.load_dataset(target, spec.get("config_name"), split=split, revision=spec.get("revision"))
    _check_columns(ds.column_names, {c: c for c in cols}, f"{target}[{split}]")
    ds = ds.cast_column(audio_col, datasets.Audio(decode=False)).select_columns(cols)
    return ds.with_format("arrow")[:]


def build_hf_parquet(spec: dict, threads: int = 1) -> tuple[list[dict], dict]:
    """A seeded random subset of an HF-format audio dataset (local Parquet or a hub repo)."""
    target = str(spec.get("path_or_repo") or ("parquet" if spec.get("data_files") else ""))
    if not target:
        raise ValueError("hf-parquet: `path_or_repo` is missing; expected a Parquet path or hub repo id")
    split = spec.get("split")
    audio_col = dataset_option(spec, "audio_column")
    text_col = dataset_option(spec, "text_column")
    id_col = dataset_option(spec, "id_column")
    cols = [c for c in (id_col, audio_col, text_col) if c is not None]
    # `via: datasets` (or `data_files`) sends local files through datasets.load_dataset too
    via_datasets = spec.get("via") == "datasets" or bool(spec.get("data_files"))
    files = None if via_datasets else local_parquet_files(target, split)
    where = target if files is None else Path(target).name
    prov: dict[str, Any] = {}
    if files is None:
        if not split:
            raise ValueError(f"hf-parquet {target}: `split` is required for a hub dataset")
        table = _datasets_table(target, split, cols, spec)
        base = None
    else:
        parts = []
        for f in files:
            try:
                names = pq.read_schema(f).names
            except (pa.ArrowInvalid, OSError) as exc:
                raise ValueError(f"{f}: not a readable Parquet file ({exc})") from exc
            _check_columns(names, {"id": id_col, "audio": audio_col, "text": text_col}, str(f))
            parts.append(pq.read_table(f, columns=cols))
        table = pa.concat_tables(parts, promote_options="default")
        base = files[0].parent
        prov["input_files"] = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    if id_col is None:  # no id column: position in the split, stable for a given file set
        ids = [f"{split or 'row'}-{k:06d}" for k in range(table.num_rows)]
    else:
        ids = [str(v) if v is not None else "" for v in _utf8_column(table, id_col, None, where)]
    texts = _utf8_column(table, text_col, ids, where)
    _check_ids_texts(ids, texts, where)
    keep, empty = _drop_unscorable(ids, texts, spec, where)
    audio = table.column(audio_col)

    def load(k: int) -> tuple[bytes, str]:
        return _audio_bytes(audio[keep[k]].as_py(), ids[keep[k]], base), texts[keep[k]]

    rows, skipped = _pick_rows([ids[k] for k in keep], spec, load, where)
    label = f"hf:{target}" if files is None else f"hf-parquet:{where}"
    label += f":{split}" if split else ""
    for r in rows:
        r["source"] = label
    prov.update({"skipped_over_max_seconds": skipped, "n_available": len(ids)})
    if empty:
        prov["skipped_empty_reference"] = empty
    return rows, prov


# --------------------------------------------------------------------------------------------------
# Local manifest (CSV/TSV of path, text[, id]; paths relative to the manifest)


def build_from_manifest(spec: dict, inputs: dict[str, Path], threads: int = 1) -> tuple[list[dict], dict]:
    """Utterances listed in a local manifest."""
    mpath = Path(inputs.get("manifest") or spec.get("path") or "")
    if not str(mpath) or str(mpath) == ".":
        raise ValueError("manifest: `path` is missing; expected a .csv or .tsv file")
    entries = read_manifest_rows(mpath)
    ids = [e.id for e in entries]
    texts = [e.text for e in entries]
    _check_ids_texts(ids, texts, str(mpath))
    keep, empty = _drop_unscorable(ids, texts, spec, str(mpath))
    files = [audio_path(mpath, e) for e in entries]

    def load(k: int) -> tuple[bytes, str]:
        k = keep[k]
        try:
            return files[k].read_bytes(), texts[k]
        except OSError as exc:
            raise ValueError(f"{mpath}: {ids[k]}: cannot read audio file {files[k]} ({exc})") from exc

    rows, skipped = _pick_rows([ids[k] for k in keep], spec, load, mpath.name, lambda k: files[keep[k]])
    for r in rows:
        r["source"] = f"manifest:{mpath.name}"
    prov = {"input_files": {mpath.name: hashlib.sha256(mpath.read_bytes()).hexdigest()},
            "skipped_over_max_seconds": skipped, "n_available": len(ids)}
    if empty:
        prov["skipped_empty_reference"] = empty
    return rows, prov
