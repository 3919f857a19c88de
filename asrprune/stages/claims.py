"""claims: score files + config/claims.yaml -> results/{name}/tables/claims.parquet (+ CSV twin, forest plot) (asrprune.claim_verdicts)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from asrprune.claim_verdicts import evaluate_claims
from asrprune.claims_file import load_claims_file, load_policy
from asrprune.job import Job

log = logging.getLogger(__name__)


def run(job: Job) -> None:
    table = run_claims(
        claims_path=job.input.claims,
        score_paths=job.input.as_list("scores"),
        predicted_paths=job.input.as_list("predicted"),
        test_sets=list(job.params["test_sets"]),
        out_table=job.output.table,
        out_csv=job.output.csv,
        out_forest=job.output.forest,
        scoring=job.params["scoring"],
    )
    log.info("%d claim rows, verdicts: %s", len(table), table["verdict"].value_counts().to_dict())


def run_claims(
    claims_path: str | Path,
    score_paths: list[str],
    predicted_paths: list[str],
    test_sets: list[str],
    out_table: str,
    out_csv: str,
    out_forest: str,
    scoring: dict[str, Any],
) -> pd.DataFrame:
    """The claims stage: score files (+ predicted damage) -> claims.parquet, its CSV twin and the forest plot."""
    from asrprune.io import atomic_path, write_parquet
    from asrprune.plots import plot_claims_forest
    from asrprune.io import parse_result_path

    claims, pools = load_claims_file(claims_path)
    policy = load_policy(claims_path)
    scores = {parse_result_path(p): pd.read_parquet(p) for p in score_paths}
    predicted = pd.concat([pd.read_parquet(p) for p in predicted_paths]) if predicted_paths else None
    table = evaluate_claims(
        claims, pools, scores, test_sets, predicted, samples=int(scoring["bootstrap_samples"]), seed=int(scoring["seed"]),
        policy=policy,
    )
    write_parquet(table, out_table)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    plot_claims_forest(table, out_forest)
    return table
