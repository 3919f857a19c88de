"""Resource use per rule, read from the benchmark files Snakemake writes for every job.

Every rule has a ``benchmark:`` file, ``{results}/benchmarks/{rule}/{wildcards}.tsv``: Snakemake's
own table (``s``, ``max_rss`` in MB, ``cpu_time`` in s, ...) of the job's process tree. This module
rolls them up per rule and sets them against the ``mem_mb`` the config requests, which is what a
SLURM user needs to size ``resources:``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

USAGE_COLUMNS = ["rule", "jobs", "wall_s_total", "wall_s_max", "cpu_s_total", "max_rss_mb", "mem_mb_requested", "rss_of_request"]


def benchmark_files(root: str | Path, also: Iterable[str | Path] = ()) -> list[tuple[Path, Path]]:
    """(file, path relative to its benchmarks folder) of every benchmark file under `root`, plus the
    existing files of `also` (shared jobs' benchmarks in the store, `{store}/benchmarks/RULE/JOB.tsv`)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory; expected the benchmarks of a finished run (results/NAME/benchmarks)")
    found = [(path, path.relative_to(root)) for path in sorted(root.rglob("*.tsv"))]
    for path in map(Path, also):
        if path.is_file():
            found.append((path, Path(path.parent.name) / path.name))
    return found


def elapsed_minutes(benchmarks_dir: str | Path, also: Sequence[str | Path] = ()) -> float:
    """Wall-clock span of a run in minutes: from the earliest job start (a benchmark file's modification
    time minus its seconds) to the last end, over the files under `benchmarks_dir` and of `also`."""
    starts, ends = [], []
    for path, _ in benchmark_files(benchmarks_dir, also):
        seconds = float(pd.read_csv(path, sep="\t").iloc[-1]["s"])
        ends.append(path.stat().st_mtime)
        starts.append(path.stat().st_mtime - seconds)
    if not ends:
        raise ValueError(f"{benchmarks_dir}: no benchmark files")
    return (max(ends) - min(starts)) / 60


def read_benchmarks(root: str | Path, also: Iterable[str | Path] = ()) -> pd.DataFrame:
    """One row per benchmark file under `root` (and of `also`): rule (first path part), job (the path),
    and its measurements."""
    rows = []
    for path, rel in benchmark_files(root, also):
        # rel: RULE/WILDCARDS....tsv, or RULE.tsv for a rule without wildcards
        table = pd.read_csv(path, sep="\t")
        missing = {"s", "max_rss", "cpu_time"} - set(table.columns)
        if missing or table.empty:
            raise ValueError(f"{path}: not a Snakemake benchmark file (missing {sorted(missing) or 'rows'})")
        last = table.iloc[-1]  # with repeat(), the last repetition
        rows.append(
            {
                "rule": rel.parts[0].removesuffix(".tsv"),
                "job": str(rel.with_suffix("")),
                "wall_s": float(last["s"]),
                "cpu_s": _number(last["cpu_time"]),
                "max_rss_mb": _number(last["max_rss"]),
            }
        )
    if not rows:
        raise ValueError(f"{root}: no benchmark files; run the workflow first")
    return pd.DataFrame(rows)


def _number(value: Any) -> float:
    """Snakemake writes '-' where psutil could not measure (a job too short to sample)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def usage_by_rule(jobs: pd.DataFrame, requested_mem_mb: dict[str, float | None]) -> pd.DataFrame:
    """Per rule: job count, wall and CPU seconds, peak RSS (MB), and the peak as a fraction of `mem_mb`."""
    grouped = jobs.groupby("rule", sort=True)
    out = pd.DataFrame(
        {
            "jobs": grouped.size(),
            "wall_s_total": grouped["wall_s"].sum(),
            "wall_s_max": grouped["wall_s"].max(),
            "cpu_s_total": grouped["cpu_s"].sum(),
            "max_rss_mb": grouped["max_rss_mb"].max(),
        }
    ).reset_index()
    out["mem_mb_requested"] = [requested_mem_mb.get(r) for r in out["rule"]]
    out["rss_of_request"] = out["max_rss_mb"] / out["mem_mb_requested"].astype(float)
    return out[USAGE_COLUMNS]
