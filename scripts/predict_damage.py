"""Snakemake adapter: OBD predicted damage ½ Σ F·w² of every mask set of one model → predicted.parquet."""

from asrprune.damage import run_predict
from asrprune.runtime import setup_script

smk = snakemake  # noqa: F821 (injected by Snakemake)
setup_script(smk.log[0], smk.threads)
masks = smk.input.masks
mask_dirs = [masks] if isinstance(masks, str) else list(masks)
run_predict(smk.input.model, smk.input.fisher, mask_dirs, smk.output[0])
