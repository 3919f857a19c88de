"""findings: claims.parquet -> the findings document, its claims CSV and the effect-vs-size plot (asrprune.findings)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from asrprune.job import Job

log = logging.getLogger(__name__)


def run(job: Job) -> None:
    write_findings(
        job.input.claims,
        job.input.table,
        job.params["benchmarks"],
        job.output.markdown,
        job.output.csv,
        job.output.effects,
        config_hash=job.params["config_hash"],
        config_name=job.params["config_name"],
        store_benchmarks=job.params.get("store_benchmarks", ()),
        previous_path=_one(job.input.get("previous")),
        claims_file=_one(job.input.get("claims_file")),
    )
    log.info("wrote %s", job.output.markdown)


def _one(value) -> str | None:
    """An optional named input: a path, or None for an absent or empty one."""
    if isinstance(value, str):
        return value or None
    return next(iter(value), None) if value else None


def write_findings(
    claims_path: str | Path,
    wer_path: str | Path,
    benchmarks_dir: str | Path,
    out_md: str | Path,
    out_csv: str | Path,
    out_png: str | Path,
    *,
    config_hash: str,
    config_name: str,
    store_benchmarks: Sequence[str | Path] = (),
    previous_path: str | Path | None = None,
    claims_file: str | Path | None = None,
) -> str:
    """Write the findings document, the claims CSV beside it and the effect-vs-model-size plot.

    `previous_path`: an earlier claims CSV (config `findings.previous`, the study keeps
    docs/findings_claims_previous.csv, a frozen copy, never the file this stage writes) for the
    "Verdicts that changed" section. `claims_file`: the claims YAML, for the policy's name.
    """
    from asrprune.findings import claim_models, findings_markdown, no_timing_lines, timing_lines
    from asrprune.io import atomic_path
    from asrprune.plots import plot_effect_vs_model_size
    from asrprune.usage import elapsed_minutes, read_benchmarks

    claims = pd.read_parquet(claims_path)
    wer = pd.read_parquet(wer_path)
    try:
        timing = timing_lines(read_benchmarks(benchmarks_dir, store_benchmarks),
                              elapsed_minutes(benchmarks_dir, store_benchmarks), claim_models(claims))
    except (FileNotFoundError, ValueError) as error:
        timing = no_timing_lines(error)
    previous = pd.read_csv(previous_path) if previous_path else None
    policy = None
    if claims_file:
        from asrprune.claims_file import load_policy

        policy = asdict(load_policy(claims_file))
    text = findings_markdown(claims, wer, timing, config_hash=config_hash, config_name=config_name,
                             previous=previous, policy=policy)
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    with atomic_path(out_csv) as tmp:
        claims.drop(columns=["sentence"]).to_csv(tmp, index=False, float_format="%.6g")
    plot_effect_vs_model_size(claims, out_png)
    return text
