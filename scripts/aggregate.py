"""Snakemake adapter for the aggregate stage (asrprune.stages.aggregate)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "aggregate")  # noqa: F821 (injected by Snakemake's `script:` directive)
