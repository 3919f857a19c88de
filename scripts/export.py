"""Snakemake adapter for the export stage (asrprune.stages.export)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "export")  # noqa: F821 (injected by Snakemake's `script:` directive)
