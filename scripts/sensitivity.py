"""Snakemake adapter for the sensitivity stage (asrprune.stages.sensitivity)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "sensitivity")  # noqa: F821 (injected by Snakemake's `script:` directive)
