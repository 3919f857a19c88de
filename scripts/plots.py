"""Snakemake adapter for the plots stage (asrprune.stages.plots)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "plots")  # noqa: F821 (injected by Snakemake's `script:` directive)
