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
    # `of` for a degraded split, the manifest of a manifest set (the clips it lists are inputs only
    # so that Snakemake tracks them)
    inputs={name: Path(path) for name, path in smk.input.items() if name in ("of", "manifest")},
    threads=smk.threads,
)
