"""bench/bench_study_cost.py on a small synthetic results directory."""

import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import bench_study_cost as B  # noqa: E402


def _job(results, model, variant, dataset, seconds, tokens, hit):
    bench = results / "benchmarks" / "decode" / model / variant
    bench.mkdir(parents=True, exist_ok=True)
    (bench / f"{dataset}.tsv").write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:01\t900\n")
    out = results / "decode" / model / variant
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": [f"u{i}" for i in range(len(tokens))], "n_tokens": tokens, "token_limit": [20] * len(tokens),
                  "hit_token_limit": hit}).to_parquet(out / f"{dataset}.parquet")


def test_cost_and_runaway_share_are_ratios_to_the_baseline(tmp_path, capsys):
    results = tmp_path / "results" / "study"
    _job(results, "tiny.en", "baseline", "ivr", 4.0, [5, 5, 5, 5], [False] * 4)
    _job(results, "tiny.en", "schedule-authors40", "ivr", 12.0, [20, 20, 5, 5], [True, True, False, False])
    _job(results, "tiny.en", "baseline", "noisy", 2.0, [10, 10], [False, False])
    _job(results, "tiny.en", "magnitude-dec_self_attn-s50", "noisy", 1.0, [10, 10], [False, False])
    table = B.decode_cost(results).set_index(["variant", "dataset"])
    s = table.loc[("schedule-authors40", "ivr")]
    assert s["s_per_utt"] == 3.0 and s["cost_ratio"] == 3.0  # 12 s / 4 against 4 s / 4
    assert s["tokens_per_utt"] == 12.5 and s["token_ratio"] == 2.5
    assert s["runaway_token_share"] == pytest.approx(40 / 50) and s["n_hit_limit"] == 2
    assert table.loc[("magnitude-dec_self_attn-s50", "noisy"), "cost_ratio"] == 0.5
    assert table.loc[("baseline", "noisy"), "cost_ratio"] == 1.0
    totals = B.totals(B.decode_cost(results)).set_index("variant")
    assert totals.loc["baseline", "cost_ratio"] == 1.0 and totals.loc["baseline", "n_utts"] == 6
    assert B.main([str(results)]) == 0
    out = capsys.readouterr().out
    assert "schedule-authors40" in out and "job-minutes" in out


def test_a_directory_without_benchmarks_is_named(tmp_path, capsys):
    assert B.main([str(tmp_path)]) == 2
    assert "no decode benchmark files" in capsys.readouterr().err


def test_a_run_without_its_baseline_has_no_ratio(tmp_path):
    _job(tmp_path, "base", "global-all-s40", "ivr", 6.0, [20, 20], [True, True])
    table = B.decode_cost(tmp_path)
    assert table["cost_ratio"].isna().all() and table["runaway_token_share"].iloc[0] == 1.0
    assert B.totals(table)["cost_ratio"].isna().all()
