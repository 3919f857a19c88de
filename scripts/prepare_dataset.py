"""Snakemake adapter for the prepare_dataset stage (asrprune.stages.prepare_dataset)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "prepare_dataset")  # noqa: F821 (injected by Snakemake's `script:` directive)
