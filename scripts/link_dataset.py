"""Snakemake adapter for the link_dataset stage (asrprune.stages.link_dataset)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "link_dataset")  # noqa: F821 (injected by Snakemake's `script:` directive)
