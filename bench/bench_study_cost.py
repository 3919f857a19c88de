"""The study's decode cost per model × variant × test set, as ratios to the baseline's.

    .venv/bin/python bench/bench_study_cost.py results            # today's layout
    .venv/bin/python bench/bench_study_cost.py results/study      # results/{name}/ once the paths move

Reads, under the results directory, every decode job's benchmark file
(`benchmarks/decode/{model}/{variant}/{dataset}.tsv`, Snakemake's: `s` is the job's wall seconds)
and its decode file (`decode/{model}/{variant}/{dataset}.parquet`: `n_tokens`, `token_limit`,
`hit_token_limit` per utterance), and prints per model × variant × set:

- job-seconds per utterance, and its ratio to the baseline's on the same model and set;
- tokens per utterance and their ratio to the baseline's;
- the runaway share: the tokens spent on hypotheses that hit the token limit, of all tokens decoded.

A variant that collapses into runaway hypotheses runs every one of them to the token limit: its
token ratio says how much of its cost that is; a decoder-only variant that reads cached encoder
states costs less per token. Sizing a study: cost ≈ Σ utterances × the baseline's s/utterance × ratio.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

COLUMNS = ["model", "variant", "dataset", "n_utts", "job_s", "s_per_utt", "cost_ratio", "tokens_per_utt",
           "token_ratio", "n_hit_limit", "runaway_token_share"]


def job_seconds(tsv: Path) -> float:
    """A Snakemake benchmark file's wall seconds (its last row: a rerun appends)."""
    table = pd.read_csv(tsv, sep="\t")
    if "s" not in table.columns or table.empty:
        raise ValueError(f"{tsv}: not a Snakemake benchmark file (expected a column `s` and a row)")
    return float(table["s"].iloc[-1])


def decode_cost(results: str | Path) -> pd.DataFrame:
    """One row per decode job that left both a benchmark and a decode file (COLUMNS)."""
    results = Path(results)
    root = results / "benchmarks" / "decode"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no decode benchmark files; expected a results directory of a run")
    rows = []
    for tsv in sorted(root.glob("*/*/*.tsv")):
        model, variant, dataset = tsv.parts[-3], tsv.parts[-2], tsv.stem
        decoded = results / "decode" / model / variant / f"{dataset}.parquet"
        if not decoded.is_file():
            print(f"skipped {model}/{variant}/{dataset}: no decode file {decoded}", file=sys.stderr)
            continue
        d = pd.read_parquet(decoded, columns=["n_tokens", "token_limit", "hit_token_limit"])
        tokens = int(d["n_tokens"].sum())
        runaway = int(d.loc[d["hit_token_limit"].astype(bool), "n_tokens"].sum())
        seconds = job_seconds(tsv)
        n = len(d)
        rows.append({
            "model": model, "variant": variant, "dataset": dataset, "n_utts": n, "job_s": seconds,
            "s_per_utt": seconds / n if n else float("nan"),
            "tokens_per_utt": tokens / n if n else float("nan"),
            "n_hit_limit": int(d["hit_token_limit"].astype(bool).sum()),
            "runaway_token_share": runaway / tokens if tokens else 0.0,
        })
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("cost_ratio", "token_ratio")])
    base = table[table["variant"] == "baseline"].set_index(["model", "dataset"])
    key = list(zip(table["model"], table["dataset"]))
    table["cost_ratio"] = [r.s_per_utt / base["s_per_utt"].get(k, float("nan")) for r, k in zip(table.itertuples(), key)]
    table["token_ratio"] = [r.tokens_per_utt / base["tokens_per_utt"].get(k, float("nan"))
                            for r, k in zip(table.itertuples(), key)]
    return table[COLUMNS].sort_values(["model", "dataset", "variant"], key=lambda s: s.map(
        lambda v: (v != "baseline", v))).reset_index(drop=True)


def totals(table: pd.DataFrame) -> pd.DataFrame:
    """Per model × variant over all its sets: job seconds, utterances, s/utterance and its ratio to the
    baseline's cost on the same sets (the baseline's s/utterance weighted by the variant's utterances)."""
    base = table[table["variant"] == "baseline"].set_index(["model", "dataset"])["s_per_utt"]
    expected = [r.n_utts * base.get((r.model, r.dataset), float("nan")) for r in table.itertuples()]
    t = table.assign(baseline_s=expected).groupby(["model", "variant"], sort=True).agg(
        sets=("dataset", "count"), n_utts=("n_utts", "sum"), job_s=("job_s", "sum"), baseline_s=("baseline_s", lambda x: x.sum(min_count=1)))
    t["s_per_utt"] = t["job_s"] / t["n_utts"]
    t["cost_ratio"] = t["job_s"] / t["baseline_s"]
    return t.drop(columns="baseline_s").reset_index()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="a run's results directory (holds benchmarks/ and decode/)")
    args = parser.parse_args(argv)
    try:
        table = decode_cost(args.results)
    except (FileNotFoundError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    if table.empty:
        print(f"{args.results}: no decode job has both a benchmark and a decode file", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_rows", None, "display.max_columns", None):
        print("Per model × variant × set (ratios to the baseline on the same model and set):")
        print(table.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
        print("\nPer model × variant, all its sets:")
        print(totals(table).to_string(index=False, float_format=lambda x: f"{x:.3g}"))
        print(f"\nAll decode jobs: {table['job_s'].sum() / 60:.1f} job-minutes, {int(table['n_utts'].sum())} utterances")
    return 0


if __name__ == "__main__":
    sys.exit(main())
