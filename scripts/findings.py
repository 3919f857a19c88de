"""Snakemake adapter for the findings stage (asrprune.stages.findings)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "findings")  # noqa: F821 (injected by Snakemake's `script:` directive)
