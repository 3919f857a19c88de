"""Snakemake adapter: results/data/{dataset}.parquet from the dataset's config entry (docs/contracts.md)."""

from pathlib import Path

from asrprune.runtime import setup_script

smk = snakemake  # noqa: F821 (injected by Snakemake's `script:` directive)
log = setup_script(smk.log[0], smk.threads)

from asrprune.datasets import build_dataset  # noqa: E402

build_dataset(
    smk.wildcards.dataset,
    dict(smk.params.spec),
    Path(smk.output[0]),
    inputs={name: Path(path) for name, path in smk.input.items()},  # `of` for a degraded split
    threads=smk.threads,
)
