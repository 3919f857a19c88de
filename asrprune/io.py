"""Atomic, reproducible writes: every output appears whole or not at all."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_UMASK = os.umask(0)
os.umask(_UMASK)


def _tmp_prefix(path: Path) -> str:
    """Prefix of the temporary siblings of `path`: `.NAME.PID.` (the pid lets a later writer tell dead ones)."""
    return f".{path.name}.{os.getpid()}."


def _sweep_stale(path: Path) -> None:
    """Remove temporary siblings of `path` left by writers that were killed (SIGKILL, power loss).

    Only `.NAME.PID.xxxxxxxx[suffix]` entries whose PID is no longer running on this host are
    removed, so a live writer of the same name in another process is never disturbed.
    """
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[a-z0-9_]{{8}}")
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return
    for sib in siblings:
        m = pattern.match(sib.name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        if sib.is_dir() and not sib.is_symlink():
            shutil.rmtree(sib, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                sib.unlink()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists
        return True
    return True


def _prepare_parent(path: Path) -> None:
    """Create `path`'s folder, or raise an OSError that names the output and why it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        raise NotADirectoryError(
            errno.ENOTDIR, f"cannot write {path}: {blocker} is not a directory; expected a writable folder there"
        ) from exc
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {path}: cannot create its folder {path.parent} ({exc.strerror})") from exc
    _sweep_stale(path)


def _unwritable(path: Path, exc: OSError) -> OSError:
    return type(exc)(exc.errno, f"cannot write {path}: its folder {path.parent} is not writable ({exc.strerror}); "
                     "expected a writable results folder")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary file is `.NAME.PID.xxxxxxxx.SUFFIX` in the same folder (so the rename is atomic);
    it is removed on any exception, and a later writer of `path` removes those of killed processes.
    """
    path = Path(path)
    _prepare_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=_tmp_prefix(path), suffix=suffix or path.suffix or ".tmp"
        )
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are ordinary files
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    _prepare_parent(path)
    try:
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_tmp_prefix(path)))
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; outputs are ordinary directories
        yield tmp
        for child in tmp.rglob("*"):
            if child.is_file():
                os.chmod(child, 0o666 & ~_UMASK)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def check_output_root(root: str | os.PathLike) -> None:
    """Raise NotADirectoryError if `root` (the results folder) or a folder above it is not a directory.

    Snakemake itself would stop with a traceback the first time it touches an output under it.
    """
    root = Path(root)
    for p in (root, *root.parents):
        if p.exists() and not p.is_dir():
            where = "" if p == root else f" (a parent of the results folder {root})"
            raise NotADirectoryError(
                errno.ENOTDIR, f"{p}{where} is a file, not a folder; expected a folder there (move the file away)"
            )


def read_json_or_none(path: str | os.PathLike) -> Any:
    """A JSON file's content, or None when there is none yet; a broken one is a named error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); expected a file written by the workflow "
                         "(delete it and rerun to write it anew)") from None


def link_relative(target: str | os.PathLike, link: str | os.PathLike) -> None:
    """Make `link` a relative symbolic link to `target`, atomically (a link of the same name is replaced)."""
    target, link = Path(target), Path(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(os.path.relpath(target, link.parent))
    os.replace(tmp, link)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write `obj` as sorted, indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet(
    data: "pa.Table | Any", path: str | os.PathLike, metadata: dict[str, Any] | None = None
) -> None:
    """Write a pandas DataFrame or Arrow table to Parquet atomically, with JSON key-value metadata.

    No timestamps or host names go into the file, so equal inputs give byte-identical files.
    """
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({k.encode(): json.dumps(v, sort_keys=True, default=str).encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_parquet_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Return the JSON key-value metadata that `write_parquet` stored (pandas' own entry left out)."""
    raw = pq.read_schema(path).metadata or {}
    out = {}
    for k, v in raw.items():
        key = k.decode()
        if key == "pandas":
            continue
        try:
            out[key] = json.loads(v)
        except json.JSONDecodeError:
            out[key] = v.decode()
    return out


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


MANIFEST_FILE = "manifest.json"


def read_manifest(directory: str | os.PathLike, expected: str = "a manifest written by the workflow") -> dict[str, Any]:
    """The `manifest.json` of a prepared model or a mask set, as a dict.

    The one reader of manifests: a missing file, invalid JSON or a non-object is a named error
    (`PATH: WHAT; expected EXPECTED`, `expected` saying what should be there), not a bare `json` traceback.
    """
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; expected {expected}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); expected {expected}") from exc
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: holds a JSON {type(manifest).__name__}, not an object; expected {expected}")
    return manifest


def parse_result_path(path: str | Path) -> tuple[str, str, str]:
    """(model, variant, dataset) from `.../{model}/{variant}/{dataset}.parquet`."""
    p = Path(path)
    return p.parent.parent.name, p.parent.name, p.stem


def read_split(path: str | Path, max_utts: int | None = None) -> Any:
    """Read a dataset Parquet file (see docs/contracts.md) into a DataFrame sorted by id, optionally
    its first `max_utts` rows."""
    import pandas as pd

    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ValueError(f"{path}: not a readable Parquet file ({exc}); expected a dataset written by "
                         "prepare_dataset (docs/contracts.md)") from exc
    missing = {"id", "audio", "text", "duration_s"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}; expected the dataset contract of docs/contracts.md")
    df = df.sort_values("id", kind="stable").reset_index(drop=True)
    return df if max_utts is None else df.head(max_utts)
