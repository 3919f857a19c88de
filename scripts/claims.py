"""Snakemake adapter for the claims stage (asrprune.stages.claims)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "claims")  # noqa: F821 (injected by Snakemake's `script:` directive)
