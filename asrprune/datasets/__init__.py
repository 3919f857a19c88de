"""Dataset preparation: one spec -> one Parquet file of 16 kHz FLAC utterances (docs/contracts.md).

`build_dataset` dispatches on `spec["source"]`: `offline` (built from Debian packages, see
`offline`), `hf-parquet` and `manifest` (see `external`). The same spec always gives a byte-identical
file: rows are sorted by id and the provenance holds no timestamps or absolute paths.
"""

from __future__ import annotations

import logging
import platform
import subprocess
import time
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from asrprune.datasets.schema import AUDIO_SCHEMA, make_table, validate_table
from asrprune.io import write_parquet
from asrprune.settings import dataset_option

log = logging.getLogger(__name__)

__all__ = ["AUDIO_SCHEMA", "build_dataset", "debian_versions", "validate_table"]


def debian_versions(packages: Iterable[str]) -> dict[str, str]:
    """Installed version of each Debian package (`dpkg-query`), or 'unknown' when not installed."""
    out = {}
    for pkg in sorted(set(packages)):
        try:
            res = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], check=True,
                                 capture_output=True, text=True)
            out[pkg] = res.stdout.strip() or "unknown"
        except (subprocess.CalledProcessError, FileNotFoundError):
            # e.g. files unpacked with `dpkg-deb -x` rather than installed, or not a Debian system
            out[pkg] = "unknown"
    return out


def python_versions() -> dict[str, str]:
    """Versions of the libraries that shape the bytes (resampling, FLAC, Parquet, normalizer)."""
    import soundfile

    out = {"python": platform.python_version(), "libsndfile": soundfile.__libsndfile_version__}
    for dist in ("numpy", "scipy", "soundfile", "pyarrow", "whisper-normalizer"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def build_dataset(name: str, spec: Mapping[str, Any], out_path: Path,
                  inputs: Mapping[str, Path] | None = None, *, threads: int = 1) -> None:
    """Build dataset `name` from `spec` and write it to `out_path` (results/store/data/{name}-{key}.parquet).

    `inputs` holds files the spec depends on: `of` for a degraded split (defaults to
    `{out_path.parent}/{spec['of']}.parquet`), `manifest` for a manifest. `threads` only sets how
    many TTS processes run at once; it never changes the output.
    """
    from asrprune.datasets import external, offline

    spec = dict(spec)
    out_path = Path(out_path)
    inputs = {k: Path(v) for k, v in (inputs or {}).items()}
    if spec.get("kind") == "degraded" and "of" not in inputs and spec.get("of"):
        inputs["of"] = out_path.parent / f"{spec['of']}.parquet"
    source = spec.get("source")
    t0 = time.perf_counter()
    if source == "offline":
        rows, extra = offline.build_offline(spec, inputs, threads)
    elif source == "hf-parquet":
        rows, extra = external.build_hf_parquet(spec, threads)
    elif source == "manifest":
        rows, extra = external.build_from_manifest(spec, inputs, threads)
    else:
        raise ValueError(f"dataset {name}: source {source!r}; expected offline, hf-parquet or manifest")
    table = make_table(rows)
    validate_table(table, name)
    extra = dict(extra)
    silent = silent_utterances(table)
    if silent:  # kept (a silent clip may be deliberate), but never without a word
        log.warning("dataset %s: %d utterance(s) are pure silence: %s", name, len(silent), silent[:10])
        extra["silent_utts"] = silent
    packages = extra.pop("packages", ())
    python = python_versions()
    if source == "hf-parquet":
        python["datasets"] = _version("datasets")
    provenance = {
        "dataset": name,
        "source": source,
        "spec": spec,
        "seed": dataset_option(spec, "seed"),
        "packages": debian_versions(packages),
        "python": python,
        "n_utts": table.num_rows,
        "total_duration_s": round(sum(table.column("duration_s").to_pylist()), 6),
        **extra,
    }
    write_parquet(table, out_path, metadata={"provenance": provenance})
    log.info("dataset %s: %d utterances, %.1f s of audio, built in %.1f s -> %s", name, table.num_rows,
             provenance["total_duration_s"], time.perf_counter() - t0, out_path)


def silent_utterances(table: Any) -> list[str]:
    """Ids of the utterances whose audio is all zeros (recorded in the provenance as `silent_utts`)."""
    import io

    import numpy as np
    import soundfile as sf

    out = []
    for utt, data in zip(table.column("id").to_pylist(), table.column("audio").to_pylist()):
        samples, _ = sf.read(io.BytesIO(data), dtype="int16")
        if not np.any(samples):
            out.append(utt)
    return sorted(out)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"
