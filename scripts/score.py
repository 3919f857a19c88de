"""Snakemake adapter for the score stage (asrprune.stages.score)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "score")  # noqa: F821 (injected by Snakemake's `script:` directive)
