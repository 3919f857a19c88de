"""prepare_dataset: results/store/data/{dataset}-{key}.parquet from the dataset's config entry (docs/contracts.md)."""

from __future__ import annotations

from pathlib import Path

from asrprune.datasets import build_dataset
from asrprune.job import Job


def run(job: Job) -> None:
    build_dataset(
        job.wildcards["dataset"],
        dict(job.params["spec"]),
        Path(job.output[0]),
        # `of` for a degraded split, the manifest of a manifest set (the clips it lists are inputs only
        # so that Snakemake tracks them)
        inputs={name: Path(path) for name, path in job.input.items() if name in ("of", "manifest")},
        threads=job.threads,
    )
