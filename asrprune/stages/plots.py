"""plots: the WER table -> results/{name}/plots/{wer_vs_sparsity,delta_wer,predicted_vs_measured}.png (asrprune.plots)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from asrprune.job import Job

log = logging.getLogger(__name__)


def run(job: Job) -> None:
    for path in plot_all(
        table_path=job.input.table,
        correlation_path=job.input.correlation,
        wer_vs_sparsity=job.output.wer_vs_sparsity,
        delta_wer=job.output.delta_wer,
        predicted_vs_measured=job.output.predicted_vs_measured,
    ):
        log.info("wrote %s", path)


def plot_all(
    table_path: str | os.PathLike,
    correlation_path: str | os.PathLike | None,
    wer_vs_sparsity: str | os.PathLike,
    delta_wer: str | os.PathLike,
    predicted_vs_measured: str | os.PathLike,
) -> list[Path]:
    """The three report figures from the table files."""
    from asrprune.plots import plot_delta_bars, plot_predicted_vs_measured, plot_wer_vs_sparsity

    table = pd.read_parquet(table_path)
    correlation = pd.read_parquet(correlation_path) if correlation_path else None
    return [
        plot_wer_vs_sparsity(table, wer_vs_sparsity),
        plot_delta_bars(table, delta_wer),
        plot_predicted_vs_measured(table, predicted_vs_measured, correlation),
    ]
