"""Snakemake adapter: score files + config/claims.yaml -> results/tables/claims.parquet (+ CSV, forest plot)."""

from asrprune.runtime import setup_script

log = setup_script(snakemake.log[0], snakemake.threads)

from asrprune.claims import run_claims  # noqa: E402

table = run_claims(
    claims_path=snakemake.input.claims,
    score_paths=list(snakemake.input.scores),
    predicted_paths=list(snakemake.input.predicted),
    test_sets=list(snakemake.params.test_sets),
    out_table=snakemake.output.table,
    out_csv=snakemake.output.csv,
    out_forest=snakemake.output.forest,
    scoring=snakemake.params.scoring,
)
log.info("%d claim rows, verdicts: %s", len(table), table["verdict"].value_counts().to_dict())
