"""Snakemake adapter for the decode stage (asrprune.stages.decode)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "decode")  # noqa: F821 (injected by Snakemake's `script:` directive)
