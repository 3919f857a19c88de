"""The workflow end to end on a tiny config, and what Snakemake reruns when the config changes."""

from __future__ import annotations

import re
from contextlib import contextmanager
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(config), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)


def planned_jobs(workdir: Path, config: Path) -> Counter:
    """Jobs per rule that a dry run schedules."""
    out = snakemake(workdir, config, "-n")
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    if "Nothing to be done" in text:
        return Counter()
    block = text.split("Job stats:", 1)[1]
    counts = Counter()
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m[1] != "total":
            counts[m[1]] = int(m[2])
    return counts


@contextmanager
def edited_experiment(workdir: Path, edit):
    """The finished run's own config file edited (as a user edits theirs), restored afterwards."""
    from conftest import experiment_config

    path = experiment_config(workdir)
    before = path.read_text()
    config = yaml.safe_load(before)
    edit(config)
    # keep the key order: Snakemake compares dict params in order, so a reordered config reruns everything
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        yield path
    finally:
        path.write_text(before)


@pytest.fixture(scope="module")
def finished_run(tiny_run):
    """The tiny config run to completion (conftest.tiny_run, shared with tests/test_resume.py)."""
    return tiny_run


def test_the_table_has_every_row_and_column(finished_run):
    table = pd.read_parquet(finished_run / "results/default/tables/wer.parquet")
    required = {"model", "variant", "method", "target", "sparsity", "dataset", "n_utts", "n_ref_words", "wer", "cer",
                "substitutions", "deletions", "insertions"}
    assert required <= set(table.columns)
    assert set(table["dataset"]) == {"ivr", "tts_clean", "tts_noisy"}
    assert set(table["variant"]) == {"baseline", "magnitude-dec_self_attn-s50", "allocate-all-s20"}
    base = table[table["variant"] == "baseline"]
    assert (base["sparsity"] == 0).all() and (base["delta_wer_abs"] == 0).all()
    pruned = table[table["variant"] == "magnitude-dec_self_attn-s50"]
    assert (pruned["sparsity"] == 50).all()
    assert ((table["wer"] >= 0) & (table["wer"] < 5)).all()
    tensors = pd.read_parquet(finished_run / "results/default/sensitivity/tiny.en/tensors.parquet")
    assert {"tensor", "component", "layer", "numel", "grad_score", "fisher"} <= set(tensors.columns)
    assert (tensors["fisher"] > 0).any()


def test_a_second_run_has_nothing_to_do(finished_run):
    assert planned_jobs(finished_run, TINY) == Counter()


def test_adding_a_sparsity_runs_only_the_new_variant(finished_run, tmp_path):
    def add(config):
        config["pruning"]["grid"][0]["sparsities"] = [30, 50]

    with edited_experiment(finished_run, add) as config:
        jobs = planned_jobs(finished_run, config)
    assert jobs == Counter(prune=1, decode=3, score=3, predict_damage=1, aggregate=1, claims=1, plots=1, all=1)


def test_a_decoding_change_reruns_decoding_not_sensitivity_or_pruning(finished_run, tmp_path):
    def margin(config):
        config["decoding"]["max_tokens_margin"] = 12

    with edited_experiment(finished_run, margin) as config:
        jobs = planned_jobs(finished_run, config)
    assert jobs == Counter(decode=9, score=9, aggregate=1, claims=1, plots=1, all=1)


def test_a_calibration_change_reruns_sensitivity_and_only_the_methods_that_read_it(finished_run, tmp_path):
    def fewer(config):
        config["calibration"]["n_utts"] = 3

    with edited_experiment(finished_run, fewer) as config:
        jobs = planned_jobs(finished_run, config)
    # allocate reads the Fisher; magnitude does not
    assert jobs == Counter(sensitivity=1, prune=1, predict_damage=1, decode=3, score=3, aggregate=1, claims=1, plots=1, all=1)


def test_every_rule_leaves_a_benchmark_with_its_peak_memory(finished_run):
    from asrprune.usage import read_benchmarks

    # the experiment's jobs, and the shared store's (the model and the data sets it prepared)
    jobs = read_benchmarks(finished_run / "results/default/benchmarks",
                           sorted((finished_run / "results/store/benchmarks").rglob("*.tsv")))
    ran = {"prepare_model", "prepare_dataset", "sensitivity", "predict_damage", "prune", "decode", "score", "aggregate", "plots"}
    assert ran <= set(jobs["rule"])
    decode = jobs[jobs["rule"] == "decode"]
    assert len(decode) == 9  # 3 variants x 3 test sets
    assert (decode["max_rss_mb"] > 200).all()  # torch, the model and the audio: far above an empty interpreter


def test_the_report_of_the_real_run_renders(finished_run):
    """The end-to-end report check: `snakemake --report` on the finished tiny-config run (real
    tiny.en), every plot embedded under "Plots" with the bytes of the file on disk, the report app
    rendered and every image decoded in headless Chromium (tests/report_screenshot.check_report)."""
    from conftest import skip_outside_ci
    from report_screenshot import check_report, chromium_binary

    if chromium_binary() is None:
        skip_outside_ci("chromium is not installed (apt-get install --no-install-recommends chromium)")
    report = check_report(finished_run, configfile=TINY)
    assert report == finished_run / "results" / "default" / "report.html"
    assert report.stat().st_size > 100_000
