"""Per-rule resource use from Snakemake's benchmark files: parsing, roll-up, and bad files."""

from __future__ import annotations

import math
import os

import pytest

from asrprune.usage import USAGE_COLUMNS, elapsed_minutes, read_benchmarks, usage_by_rule

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench_file(root, rel, s, rss, cpu):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{s}\t0:00:{int(s):02d}\t{rss}\t2000\t{rss}\t{rss}\t1\t2\t90\t{cpu}\n")


def test_usage_rolls_up_jobs_per_rule(tmp_path):
    bench_file(tmp_path, "decode/tiny.en/baseline/ivr.tsv", 30.0, 1100.5, 29.0)
    bench_file(tmp_path, "decode/tiny.en/baseline/tts.tsv", 10.0, 900.0, 9.5)
    bench_file(tmp_path, "aggregate.tsv", 2.0, 300.0, "-")  # too short for psutil to sample the CPU time
    jobs = read_benchmarks(tmp_path)
    assert sorted(jobs["rule"]) == ["aggregate", "decode", "decode"]
    table = usage_by_rule(jobs, {"decode": 4000, "aggregate": None}).set_index("rule")
    assert list(table.reset_index().columns) == USAGE_COLUMNS
    assert table.loc["decode", "jobs"] == 2
    assert table.loc["decode", "wall_s_total"] == 40.0 and table.loc["decode", "wall_s_max"] == 30.0
    assert table.loc["decode", "max_rss_mb"] == 1100.5
    assert table.loc["decode", "rss_of_request"] == pytest.approx(1100.5 / 4000)
    assert math.isnan(table.loc["aggregate", "cpu_s_total"]) or table.loc["aggregate", "cpu_s_total"] == 0
    assert math.isnan(table.loc["aggregate", "rss_of_request"])


def test_missing_or_foreign_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="benchmarks of a finished run"):
        read_benchmarks(tmp_path / "nope")
    with pytest.raises(ValueError, match="no benchmark files"):
        read_benchmarks(tmp_path)
    (tmp_path / "decode").mkdir()
    (tmp_path / "decode" / "x.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match=r"x.tsv: not a Snakemake benchmark file \(missing \['cpu_time', 'max_rss', 's'\]\)"):
        read_benchmarks(tmp_path)


def test_elapsed_minutes_spans_the_earliest_start_to_the_last_end(tmp_path):
    """A job starts at its file's modification time minus its seconds; the span runs over the
    experiment's files and the store's shared ones."""
    bench_file(tmp_path / "exp", "decode/a.tsv", 120.0, 900.0, 100.0)  # ran 1000-1120
    bench_file(tmp_path / "exp", "score/a.tsv", 30.0, 300.0, 29.0)  # ran 1150-1180
    bench_file(tmp_path / "store", "prepare_model/m.tsv", 600.0, 2000.0, 590.0)  # ran 400-1000
    for rel, end in [("exp/decode/a.tsv", 1120), ("exp/score/a.tsv", 1180), ("store/prepare_model/m.tsv", 1000)]:
        os.utime(tmp_path / rel, (end, end))
    assert elapsed_minutes(tmp_path / "exp") == pytest.approx((1180 - 1000) / 60)
    shared = [tmp_path / "store/prepare_model/m.tsv", tmp_path / "store/prepare_model/absent.tsv"]
    assert elapsed_minutes(tmp_path / "exp", shared) == pytest.approx((1180 - 400) / 60)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no benchmark files"):
        elapsed_minutes(tmp_path / "empty")
