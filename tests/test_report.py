"""The `plots` rule and the HTML report, on a SYNTHETIC table in a throwaway mini-workflow.

The real end-to-end check (`check_report` on the tiny-config run) is
tests/test_workflow.py::test_the_report_of_the_real_run_renders;
this file checks the report mechanics in seconds, without building models or data: a two-rule
Snakefile in a temporary folder includes the real rules/report.smk and scripts/plots.py, runs the
`plots` rule on a synthetic WER table, then `check_report` builds the report and opens it in
headless Chromium. Nothing here is written inside the repository.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_screenshot import (
    PLOTS,
    ReportCheckError,
    check_report,
    chromium_binary,
    decode_data_uri,
    png_size,
    report_results,
)
from conftest import skip_outside_ci
from test_plots import synthetic_wer_table

REPO = Path(__file__).resolve().parents[1]

MINI_SNAKEFILE = """\
# Test scaffold: the real `plots` rule on a SYNTHETIC table (made-up numbers, never a result).
EXP = "results/default"


def res(rule_name):
    return {}


def threads_of(rule_name):
    return 1


report: "report/workflow.rst"


include: "rules/report.smk"


rule all:
    input:
        PLOTS,
    default_target: True
"""


def test_decode_data_uri_and_png_size():
    png = (REPO / "tests" / "test_plots.py").read_bytes()  # any bytes: not a PNG
    uri = "data:image/png;charset=utf8;filename=x.png;base64," + base64.b64encode(png).decode()
    mime, data = decode_data_uri(uri)
    assert mime == "image/png" and data == png
    with pytest.raises(ReportCheckError, match="not a PNG"):
        png_size(data)
    with pytest.raises(ReportCheckError, match="not a base64 data URI"):
        decode_data_uri("results/default/plots/x.png")


def test_report_results_reads_the_embedded_results():
    html = '<script>\n    var results = {"results/default/plots/a.png": {"mime_type": "image/png"}};\n</script>'
    assert report_results(html) == {"results/default/plots/a.png": {"mime_type": "image/png"}}
    with pytest.raises(ReportCheckError, match="not a Snakemake 9 html report"):
        report_results("<html></html>")


def make_mini_workflow(root: Path) -> Path:
    """A folder that looks like the repository to rules/report.smk (its ../scripts, ../report, ../envs)."""
    (root / "rules").mkdir()
    os.symlink(REPO / "rules" / "report.smk", root / "rules" / "report.smk")
    os.symlink(REPO / "scripts", root / "scripts")
    os.symlink(REPO / "report", root / "report")
    if (REPO / "envs" / "asrprune.yaml").is_file():
        os.symlink(REPO / "envs", root / "envs")
    else:  # the env file is only recorded in the job metadata here (no --sdm conda)
        (root / "envs").mkdir()
        (root / "envs" / "asrprune.yaml").write_text("name: asrprune-test-scaffold\ndependencies: []\n")
    snakefile = root / "Snakefile"
    snakefile.write_text(f"PLOTS = {list(PLOTS)!r}\n" + MINI_SNAKEFILE)
    from asrprune.tables import damage_correlation

    table = synthetic_wer_table()
    (root / "results" / "default" / "tables").mkdir(parents=True)
    table.to_parquet(root / "results" / "default" / "tables" / "wer.parquet")
    damage_correlation(table).to_parquet(root / "results" / "default" / "tables" / "damage_correlation.parquet")
    return snakefile


@pytest.mark.workflow
def test_the_plots_rule_and_the_report_render(tmp_path):
    if chromium_binary() is None:
        skip_outside_ci("chromium is not installed (apt-get install --no-install-recommends chromium)")
    snakefile = make_mini_workflow(tmp_path)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(tmp_path), "--cores", "1"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    for plot in PLOTS:
        assert (tmp_path / plot).stat().st_size > 5_000
    assert "wrote results/default/plots/delta_wer.png" in (tmp_path / "results/default/logs/plots.log").read_text()

    report = check_report(tmp_path, snakefile=snakefile)
    assert report == tmp_path / "results" / "default" / "report.html"
    assert report.stat().st_size > 100_000
    assert png_size((tmp_path / "results" / "default" / "report.png").read_bytes()) == (1400, 1000)
