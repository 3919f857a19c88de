"""Kill-and-resume: a run killed mid-decode (SIGTERM, then SIGKILL) resumes to the same table.

The uninterrupted run is `conftest.tiny_run` (shared with tests/test_workflow.py). A second workdir
runs the same config and is killed twice while a decode job is running: first the whole snakemake
process group gets SIGTERM (what Ctrl-C-less shutdowns and SLURM cancellations send), then, in the
rerun, SIGKILL (a node lost, the OOM killer). The final `--rerun-incomplete` must finish, redo
nothing that had finished, leave no temporary file, and give the same results: the WER table equal
in every column but the timing ones (asrprune.tables.TIMING_COLUMNS), the data Parquet files and
mask sets byte-identical to the uninterrupted run's (two clean builds of one config agree).
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from asrprune.tables import TIMING_COLUMNS
from conftest import REPO, snakemake_cmd
from test_bad_inputs import temp_files

pytestmark = pytest.mark.workflow

START_TIMEOUT_S = 900  # until a decode job runs (data, model and masks come first on 2 shared cores)
RUN_TIMEOUT_S = 1800


def running_outputs(workdir: Path) -> list[str]:
    """Outputs of the jobs snakemake has started and not finished (its `.snakemake/incomplete` markers)."""
    root = workdir / ".snakemake" / "incomplete"
    if not root.is_dir():
        return []
    out = []
    for marker in root.rglob("*"):
        if marker.is_file() and marker.name != "migration_underway":
            b64 = "".join(p.lstrip("@") for p in marker.relative_to(root).parts)
            try:
                out.append(base64.urlsafe_b64decode(b64).decode())
            except (ValueError, UnicodeDecodeError):
                continue
    return sorted(out)


def running_decodes(workdir: Path) -> list[str]:
    return [p for p in running_outputs(workdir) if p.startswith("results/default/decode/")]


def start_run(workdir: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    """snakemake in its own process group (so the whole group can be signalled), output to a log."""
    log = workdir.parent / f"{workdir.name}-{time.monotonic_ns()}.log"
    cmd = snakemake_cmd(workdir) + list(extra)
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    return proc, log


def wait_for_decode(proc: subprocess.Popen, workdir: Path, log: Path) -> str:
    """Block until a decode job is running; return its output path."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        running = running_decodes(workdir)
        if running:
            return running[0]
        if proc.poll() is not None:
            pytest.fail(f"snakemake ended (rc {proc.returncode}) before a decode ran:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"no decode job started within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def log_of(output: str) -> str:
    """results/default/decode/M/V/D.parquet -> results/default/logs/decode/M/V/D.log (rules/decode.smk)."""
    return output.replace("results/default/decode/", "results/default/logs/decode/", 1).removesuffix(".parquet") + ".log"


def wait_until_decoding(proc: subprocess.Popen, workdir: Path, output: str, timeout_s: float = 180) -> bool:
    """Block until the job of `output` logs that it is decoding (past loading the model and masks).

    Only what the job writes from now on counts: the log may still hold the killed try's lines.
    Returns False if the job ended or the line did not come in time; the caller then kills anyway.
    """
    log = workdir / log_of(output)
    offset = log.stat().st_size if log.exists() else 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None and output in running_outputs(workdir):
        text = log.read_text(errors="replace") if log.exists() else ""
        if len(text) < offset:  # snakemake removed the old log before starting the job
            offset = 0
        if re.search(r"\bdecoding \d+ utterances", text[offset:]):
            return True
        time.sleep(0.1)
    return False


def kill_group(proc: subprocess.Popen, sig: int) -> int:
    os.killpg(proc.pid, sig)
    try:
        return proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def files_under(root: Path, *parts: str) -> dict[str, bytes]:
    """Relative path -> bytes of every regular file under root/parts (snakemake's timestamps left out)."""
    base = root.joinpath(*parts)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(base.rglob("*"))
            if p.is_file() and p.name != ".snakemake_timestamp"}


def mtimes(root: Path, *parts: str) -> dict[str, int]:
    base = root.joinpath(*parts)
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(base.rglob("*")) if p.is_file()}


def test_killed_runs_resume_to_the_same_results(tiny_run, tmp_path):
    workdir = tmp_path / "resumed"
    timings = {}

    # Round 1: SIGTERM to the whole process group while a decode job is running.
    t0 = time.monotonic()
    proc, log = start_run(workdir)
    first = wait_for_decode(proc, workdir, log)
    mid = {"round 1": wait_until_decoding(proc, workdir, first)}
    time.sleep(1)
    rc = kill_group(proc, signal.SIGTERM)
    timings["round 1 (SIGTERM)"] = time.monotonic() - t0
    assert rc != 0, log.read_text()[-3000:]
    assert not (workdir / first).exists(), f"{first} was written by a job killed mid-run"
    assert temp_files(workdir / "results") == []
    finished = {**mtimes(workdir, "results", "store", "data"), **mtimes(workdir, "results", "store", "models"),
                **mtimes(workdir, "results", "default", "masks")}
    assert any(k.startswith("results/store/data/") for k in finished), "the kill came before the data was built"

    # Round 2: rerun, then SIGKILL the group mid-decode (no handler runs, snakemake keeps its lock).
    t1 = time.monotonic()
    proc, log = start_run(workdir, "--rerun-incomplete")
    second = wait_for_decode(proc, workdir, log)
    mid["round 2"] = wait_until_decoding(proc, workdir, second)
    time.sleep(1)
    kill_group(proc, signal.SIGKILL)
    timings["round 2 (SIGKILL)"] = time.monotonic() - t1
    assert second in running_outputs(workdir), "the SIGKILLed job's incomplete marker is gone"
    assert not (workdir / second).exists(), f"{second} was written by a job killed mid-run"

    # Round 3: unlock (the killed snakemake could not), rerun the incomplete jobs, finish.
    t2 = time.monotonic()
    unlock = subprocess.run(snakemake_cmd(workdir) + ["--unlock"], capture_output=True, text=True, cwd=REPO)
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    proc, log = start_run(workdir, "--rerun-incomplete")
    try:
        rc = proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    timings["round 3 (resume to the end)"] = time.monotonic() - t2
    print("kill-and-resume timings (s):", {k: round(v, 1) for k, v in timings.items()},
          "killed while decoding:", mid, "jobs:", first, second)
    assert rc == 0, log.read_text()[-5000:]
    assert running_outputs(workdir) == []
    assert temp_files(workdir / "results") == []
    assert sorted((workdir / "results").rglob("*.partial")) == []  # no half-written encoder-cache entry

    # Nothing that had finished before the kills was redone.
    after = {k: v for k, v in {**mtimes(workdir, "results", "store", "data"),
                               **mtimes(workdir, "results", "store", "models"),
                               **mtimes(workdir, "results", "default", "masks")}.items() if k in finished}
    assert after == finished

    # The same results as the uninterrupted run.
    a = pd.read_parquet(tiny_run / "results/default/tables/wer.parquet")
    b = pd.read_parquet(workdir / "results/default/tables/wer.parquet")
    assert set(TIMING_COLUMNS) <= set(a.columns)
    assert list(a.columns) == list(b.columns)
    keep = [c for c in a.columns if c not in TIMING_COLUMNS]
    key = ["model", "variant", "dataset"]
    pd.testing.assert_frame_equal(a[keep].sort_values(key).reset_index(drop=True),
                                  b[keep].sort_values(key).reset_index(drop=True), check_exact=True)
    for parts in (("results", "store", "data"), ("results", "default", "masks")):
        ours, theirs = files_under(workdir, *parts), files_under(tiny_run, *parts)
        assert ours.keys() == theirs.keys()
        different = [k for k in ours if ours[k] != theirs[k]]
        assert not different, f"not byte-identical between two clean runs: {different}"
