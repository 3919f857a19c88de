"""Per-rule resource use from Snakemake's benchmark files: parsing, roll-up, and bad files."""

from __future__ import annotations

import math

import pytest

from asrprune.usage import USAGE_COLUMNS, read_benchmarks, usage_by_rule

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
