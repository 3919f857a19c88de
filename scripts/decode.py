"""Snakemake adapter: decode one test set with one variant (the baseline is an empty mask set)."""

from asrprune.runtime import setup_script

log = setup_script(snakemake.log[0], snakemake.threads)

from asrprune.pipeline import decode_variant  # noqa: E402
from asrprune.plan import execution_settings, grid_targets  # noqa: E402

decode_variant(
    model_dir=snakemake.input.model,
    mask_dir=snakemake.input.masks,
    data_path=snakemake.input.data,
    out_path=snakemake.output[0],
    # execution settings (the encoder cache) are read from the config, not params: they rerun nothing
    decoding={**snakemake.params.decoding, **execution_settings(snakemake.config)},
    cache_dir=snakemake.params.get("cache_dir"),
    # outside the job's params on purpose: which states it also caches never changes its output
    grid_targets=grid_targets(snakemake.config),
)
