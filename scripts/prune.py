"""Snakemake adapter for the prune stage (asrprune.stages.prune)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "prune")  # noqa: F821 (injected by Snakemake's `script:` directive)
