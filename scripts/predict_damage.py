"""Snakemake adapter for the predict_damage stage (asrprune.stages.predict_damage)."""

from asrprune.runtime import run_stage

run_stage(snakemake, "predict_damage")  # noqa: F821 (injected by Snakemake's `script:` directive)
