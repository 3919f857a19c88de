"""Snakemake adapter: every score file into results/tables/wer.parquet (+ CSV twin, damage correlation)."""

from asrprune.runtime import setup_script

log = setup_script(snakemake.log[0], snakemake.threads)

from asrprune.pipeline import aggregate  # noqa: E402

aggregate(
    score_paths=list(snakemake.input.scores),
    mask_dirs=list(snakemake.input.masks),
    predicted_paths=list(snakemake.input.predicted),
    out_table=snakemake.output.table,
    out_csv=snakemake.output.csv,
    out_correlation=snakemake.output.correlation,
    scoring=snakemake.params.scoring,
    decoding=snakemake.params.decoding,
    config_hash=snakemake.params.config_hash,
)
