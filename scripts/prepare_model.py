"""Snakemake adapter for the prepare_model stage (asrprune.stages.prepare_model)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "prepare_model")  # noqa: F821 (injected by Snakemake's `script:` directive)
