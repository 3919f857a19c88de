"""Snakemake adapter for the experiment stage (asrprune.stages.experiment)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "experiment")  # noqa: F821 (injected by Snakemake's `script:` directive)
