"""The files a dataset spec reads (for Snakemake to track), and local manifests: a UTF-8 CSV/TSV of
`path, text[, id]`, one utterance per line, read strictly.

A manifest is a user's own file, so it is never read leniently: a row with more or fewer fields
than the header (an unquoted comma in a CSV transcript), a quote that is not closed on its own
line (which would swallow the following rows into one transcript) and duplicate ids are refused
with the file, the line and what was expected. Audio paths are relative to the manifest.

Light on imports on purpose: `rules/common.smk` reads every manifest when it builds the DAG, so
that the manifest and the clips it lists are inputs of `prepare_dataset` (`input_files`).
"""

from __future__ import annotations

import csv
import glob
import io
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DELIMITERS = {".tsv": "\t", ".csv": ","}
_DELIMITER_NAMES = {"\t": "a tab", ",": "','"}
_QUOTING = "a field quoted whole, with any quote inside it doubled (\"\"), or no quotes at all"


@dataclass(frozen=True)
class ManifestRow:
    """One utterance of a manifest: its 1-based line, id, audio path as written, and transcript."""

    line: int
    id: str
    path: str
    text: str


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: manifest not found") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[max(0, exc.start - 10) : exc.end + 10]
        raise ValueError(f"{path}: not valid UTF-8 at line {line}, byte {exc.start} ({bad!r}); "
                         "expected a UTF-8 manifest") from exc


def _records(path: Path, raw: str, delim: str) -> list[tuple[int, list[str]]]:
    """(line, fields) of every non-blank row; a quoted field must open and close on one line."""
    reader = csv.reader(io.StringIO(raw, newline=""), delimiter=delim, strict=True)
    out: list[tuple[int, list[str]]] = []
    last = 0
    while True:
        start = last + 1
        try:
            fields = next(reader)
        except StopIteration:
            return out
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise ValueError(f"{path}: line {start}: unbalanced quote: the quoted field opened there is never "
                                 f"closed (it runs to the end of the file, line {reader.line_num}); expected "
                                 f"{_QUOTING}") from None
            detail = str(exc).replace("\t", "\\t")  # csv says "'<TAB>' expected after '\"'"
            raise ValueError(f"{path}: line {start}: unbalanced quote: {detail} on line {reader.line_num}; "
                             f"expected {_QUOTING}") from None
        last = reader.line_num
        if last > start:
            raise ValueError(f"{path}: line {start}: unbalanced quote: the quoted field opened there runs to line "
                             f"{last}; expected one utterance per line, {_QUOTING}")
        if fields:
            out.append((start, fields))


def read_manifest_rows(path: str | Path) -> list[ManifestRow]:
    """Every utterance of a manifest, strictly parsed (see the module doc); ValueError names the line."""
    path = Path(path)
    delim = DELIMITERS.get(path.suffix.lower())
    if delim is None:
        raise ValueError(f"{path}: manifest must end in .csv or .tsv")
    records = _records(path, _decode(path), delim)
    if not records:
        raise ValueError(f"{path}: the manifest is empty; expected a header path,text[,id] and one row per utterance")
    _, header = records[0]
    header = [h.strip() for h in header]
    missing = [c for c in ("path", "text") if c not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; columns are {header}, expected path,text[,id]")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise ValueError(f"{path}: column(s) {repeated} appear more than once in the header; expected each once")
    rows: list[ManifestRow] = []
    for line, fields in records[1:]:
        if len(fields) != len(header):
            raise ValueError(f"{path}: line {line} has {len(fields)} fields, expected {len(header)} ({','.join(header)}); "
                             f"quote a field that contains {_DELIMITER_NAMES[delim]} "
                             f"(\"go forward{delim} ten meters\")")
        entry = dict(zip(header, fields))
        rel = entry["path"].strip()
        if not rel:
            raise ValueError(f"{path}: line {line} has an empty path; expected an audio file path")
        utt = (entry.get("id") or "").strip() or str(Path(rel).with_suffix("")).replace("/", ".")
        rows.append(ManifestRow(line, utt, rel, entry["text"]))
    lines: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        lines[r.id].append(r.line)
    dups = sorted(i for i, ls in lines.items() if len(ls) > 1)
    if dups:
        where = "; ".join(f"{i!r} on lines {', '.join(map(str, lines[i][:-1]))} and {lines[i][-1]}" for i in dups[:5])
        raise ValueError(f"{path}: duplicate ids {dups[:5]}; expected unique ids ({where})")
    return rows


def audio_path(manifest: str | Path, row: ManifestRow) -> Path:
    """Where a row's audio is: its path relative to the manifest's folder (or absolute)."""
    return Path(manifest).parent / row.path


def local_parquet_files(path_or_repo: str, split: str | None) -> list[Path] | None:
    """Parquet files for a local file, directory or glob; None when it names no local path (a hub repo)."""
    p = Path(path_or_repo)
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(p.rglob("*.parquet"))
        if split:  # the hub layout: data/{split}-00000-of-00001.parquet
            files = [f for f in files if f.name.startswith(f"{split}-") or f.stem == split
                     or f.parent.name == split]
        if not files:
            raise ValueError(f"{p}: no Parquet files for split {split!r}; expected files named "
                             f"{split}-*.parquet (or {split}.parquet, or under {split}/)")
        return files
    if any(c in path_or_repo for c in "*?["):
        files = sorted(Path(f) for f in glob.glob(path_or_repo, recursive=True))
        if not files:
            raise ValueError(f"{path_or_repo}: the glob matches no files; expected Parquet files")
        return files
    if path_or_repo.endswith(".parquet") or path_or_repo.startswith((".", "/")):
        raise ValueError(f"{path_or_repo}: no such file; expected a Parquet file, directory or hub repo id")
    return None


def input_files(spec: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """The files a dataset spec reads, for Snakemake to track: a manifest and every clip it lists,
    or the local Parquet files of an `hf-parquet` set. Nothing for the other sources."""
    source = spec.get("source")
    if source == "manifest" and spec.get("path"):
        manifest = str(spec["path"])
        return {"manifest": manifest, "audio": sorted({str(audio_path(manifest, r)) for r in read_manifest_rows(manifest)})}
    if source == "hf-parquet" and spec.get("path_or_repo") and spec.get("via") != "datasets" and not spec.get("data_files"):
        files = local_parquet_files(str(spec["path_or_repo"]), spec.get("split"))
        return {"parquet": [str(f) for f in files]} if files else {}
    return {}


def content_sha256(spec: Mapping[str, Any]) -> str | None:
    """One sha256 over the bytes of every file a dataset spec reads (`input_files`), or None when it
    reads none of the user's files.

    A param of `prepare_dataset`, so a clip replaced by other bytes reruns its data set even when
    the new file keeps the old timestamp (`cp -p`): Snakemake compares checksums only when an
    mtime moves. The files are read once per DAG build; a missing one hashes as missing (Snakemake
    reports it as a missing input).
    """
    import hashlib

    files = input_files(spec)
    if not files:
        return None
    total = hashlib.sha256()
    for key in sorted(files):
        paths = files[key] if isinstance(files[key], list) else [files[key]]
        for path in paths:
            h = hashlib.sha256()
            try:
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                digest = h.hexdigest()
            except OSError:
                digest = "missing"
            total.update(f"{key}\0{path}\0{digest}\n".encode())
    return total.hexdigest()
