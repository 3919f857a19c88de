"""Snakemake adapter: the WER table -> results/plots/{wer_vs_sparsity,delta_wer,predicted_vs_measured}.png."""

from asrprune.runtime import setup_script

log = setup_script(snakemake.log[0], snakemake.threads)

from asrprune.plots import plot_all  # noqa: E402

for path in plot_all(
    table_path=snakemake.input.table,
    correlation_path=snakemake.input.correlation,
    wer_vs_sparsity=snakemake.output.wer_vs_sparsity,
    delta_wer=snakemake.output.delta_wer,
    predicted_vs_measured=snakemake.output.predicted_vs_measured,
):
    log.info("wrote %s", path)
