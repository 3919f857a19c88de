"""Snakemake adapter for the check_calibration stage (asrprune.stages.check_calibration)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "check_calibration")  # noqa: F821 (injected by Snakemake's `script:` directive)
