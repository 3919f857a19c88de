"""aggregate: every score file into results/{name}/tables/wer.parquet (+ CSV twin, damage correlation)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from asrprune.io import atomic_path, parse_result_path, write_parquet
from asrprune.job import Job

log = logging.getLogger(__name__)


def run(job: Job) -> None:
    aggregate(
        score_paths=job.input.as_list("scores"),
        mask_dirs=job.input.as_list("masks"),
        predicted_paths=job.input.as_list("predicted"),
        out_table=job.output.table,
        out_csv=job.output.csv,
        out_correlation=job.output.correlation,
        scoring=job.params["scoring"],
        decoding=job.params["decoding"],
        config_hash=job.params["config_hash"],
    )


def aggregate(
    score_paths: list[str],
    mask_dirs: list[str],
    predicted_paths: list[str],
    out_table: str,
    out_csv: str,
    out_correlation: str,
    scoring: dict[str, Any],
    decoding: dict[str, Any],
    config_hash: str,
) -> pd.DataFrame:
    """Build the WER table and the predicted-vs-measured correlation table."""
    from asrprune.masks import read_mask_manifest
    from asrprune.tables import build_table, damage_correlation

    manifests = {}
    for d in mask_dirs:
        p = Path(d)
        # the table reports the manifest's sparsity: the masks must be the ones it describes
        manifests[(p.parent.name, p.name)] = read_mask_manifest(p)
    predicted = pd.concat([pd.read_parquet(p) for p in predicted_paths]) if predicted_paths else None
    frames = {parse_result_path(p): pd.read_parquet(p).sort_values("id").reset_index(drop=True) for p in score_paths}
    table = build_table(
        frames,
        manifests,
        samples=scoring["bootstrap_samples"],
        seed=scoring["seed"],
        decoding=decoding,
        config_hash=config_hash,
        predicted=predicted,
    )
    write_parquet(table, out_table)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    write_parquet(damage_correlation(table), out_correlation)
    log.info("wrote %d rows to %s", len(table), out_table)
    return table
