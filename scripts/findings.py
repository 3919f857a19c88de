"""Snakemake adapter: claims.parquet -> the findings document, its claims CSV and the effect-vs-size plot."""

from asrprune.runtime import setup_script

log = setup_script(snakemake.log[0], snakemake.threads)

from asrprune.findings import write_findings  # noqa: E402

write_findings(
    snakemake.input.claims,
    snakemake.input.table,
    snakemake.params.benchmarks,
    snakemake.output.markdown,
    snakemake.output.csv,
    snakemake.output.effects,
    config_hash=snakemake.params.config_hash,
    config_name=snakemake.params.config_name,
)
log.info("wrote %s", snakemake.output.markdown)
