"""Experiments side by side in one working directory, asrprune deployed as a Snakemake module, and
asrprune installed from a wheel: the three ways a user runs their own experiment."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import TINY_CONFIG, snakemake_cmd
from test_workflow import planned_jobs

REPO = Path(__file__).resolve().parents[1]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tiny_config(edit) -> dict:
    config = yaml.safe_load(TINY_CONFIG.read_text())
    edit(config)
    return config


def write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def two_experiments(tiny_run, tmp_path_factory):
    """The tiny run (experiment `default`) copied, then a second experiment run beside it in the same
    working directory: another name, a different `ivr` (3 prompts, not 4), one variant."""
    root = tmp_path_factory.mktemp("side_by_side")
    workdir = root / "wd"
    shutil.copytree(tiny_run, workdir, symlinks=True)  # mtimes kept: the copy is as finished as the run
    before = sha256(workdir / "results/default/tables/wer.parquet")

    def other(config):
        config["name"] = "other"
        config["datasets"]["ivr"]["max_utts"] = 3
        config["pruning"]["grid"] = [{"method": "magnitude", "targets": ["dec_self_attn"], "sparsities": [50]}]

    config = write(root / "other.yaml", tiny_config(other))
    out = subprocess.run(snakemake_cmd(workdir, config), capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    return workdir, config, before


@pytest.mark.workflow
def test_a_second_experiment_leaves_the_first_untouched(two_experiments):
    workdir, _, before = two_experiments
    assert sha256(workdir / "results/default/tables/wer.parquet") == before
    assert planned_jobs(workdir, TINY_CONFIG) == {}  # the first experiment: nothing to redo


@pytest.mark.workflow
def test_shared_work_is_done_once_and_different_definitions_apart(two_experiments):
    workdir, config, _ = two_experiments
    assert planned_jobs(workdir, config) == {}
    store = workdir / "results/store"
    assert len(list((store / "models").glob("tiny.en-*"))) == 1  # one conversion for both
    assert len(list((store / "data").glob("tts_clean-*.parquet"))) == 1  # the same definition: built once
    assert len(list((store / "data").glob("ivr-*.parquet"))) == 2  # two definitions under one name
    # each experiment's data link names its own definition
    ivr_default = (workdir / "results/default/data/ivr.parquet").resolve()
    ivr_other = (workdir / "results/other/data/ivr.parquet").resolve()
    assert ivr_default != ivr_other and ivr_default.parent == ivr_other.parent == (store / "data").resolve()
    assert len(pd.read_parquet(ivr_other)) == 3 and len(pd.read_parquet(ivr_default)) == 4
    other = pd.read_parquet(workdir / "results/other/tables/wer.parquet")
    assert set(other["variant"]) == {"baseline", "magnitude-dec_self_attn-s50"}


@pytest.mark.workflow
def test_another_config_under_a_taken_name_is_refused_before_any_job(two_experiments, tmp_path):
    workdir, _, before = two_experiments
    clash = write(tmp_path / "clash.yaml", tiny_config(lambda c: c["decoding"].update(batch_size=2)))
    logs = sorted(p for p in (workdir / "results").rglob("*.log"))
    out = subprocess.run(snakemake_cmd(workdir, clash, "-n"), capture_output=True, text=True, cwd=REPO)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "experiment 'default'" in text and "give it its own `name:`" in text, text[-3000:]
    assert sorted(p for p in (workdir / "results").rglob("*.log")) == logs
    assert sha256(workdir / "results/default/tables/wer.parquet") == before


@pytest.mark.workflow
def test_a_results_folder_of_the_old_layout_stops_the_run_with_advice(tmp_path):
    (tmp_path / "results/tables").mkdir(parents=True)
    (tmp_path / "results/tables/wer.parquet").write_bytes(b"old")
    out = subprocess.run(snakemake_cmd(tmp_path, TINY_CONFIG, "-n"), capture_output=True, text=True, cwd=REPO)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "holds outputs of the layout before experiments" in text and "results/tables" in text, text[-3000:]
    assert (tmp_path / "results/tables/wer.parquet").read_bytes() == b"old"


MODULE_SNAKEFILE = """\
configfile: "config.yaml"


module asrprune:
    snakefile:
        "{snakefile}"
    config:
        config


use rule * from asrprune
"""


@pytest.mark.workflow
def test_asrprune_deployed_as_a_module_runs_a_config_to_its_table(tmp_path):
    """A user's own directory: a config.yaml and a Snakefile that uses asrprune as a module."""
    deployment = tmp_path / "my-experiment"
    deployment.mkdir()
    (deployment / "Snakefile").write_text(MODULE_SNAKEFILE.format(snakefile=REPO / "Snakefile"))

    def mine(config):
        config["name"] = "mine"
        config["datasets"] = {"ivr": {"source": "offline", "kind": "ivr", "max_utts": 2},
                              "calib": config["datasets"]["calib"]}
        config["pruning"]["grid"] = [{"method": "magnitude", "targets": ["dec_self_attn"], "sparsities": [50]}]

    write(deployment / "config.yaml", tiny_config(mine))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=deployment)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    table = pd.read_parquet(deployment / "results/mine/tables/wer.parquet")
    assert sorted(table["variant"]) == ["baseline", "magnitude-dec_self_attn-s50"]
    assert set(table["dataset"]) == {"ivr"} and (table["n_utts"] == 2).all()
    assert not (REPO / "results/mine").exists()  # everything in the user's directory
    again = subprocess.run(cmd + ["-n"], capture_output=True, text=True, cwd=deployment)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_a_wheel_install_has_every_stage(tmp_path):
    """A non-editable install (a wheel, as a cluster or conda environment gets it) imports every stage."""
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(REPO)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("asrprune-*.whl")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    probe = (
        "import importlib, sys; sys.path.insert(0, sys.argv[1]); import asrprune, asrprune.stages as s\n"
        "assert asrprune.__file__.startswith(sys.argv[1]), asrprune.__file__\n"
        "for name in s.STAGES: importlib.import_module('asrprune.stages.' + name)\n"
        "print(len(s.STAGES))"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(site)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    from asrprune.stages import STAGES

    assert int(out.stdout) == len(STAGES)


def test_the_conda_environment_installs_asrprune_itself():
    env = yaml.safe_load((REPO / "envs/asrprune.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    # conda runs pip from the environment file's folder: `..` is this checkout
    assert ".." in pip and (REPO / "envs" / ".." / "pyproject.toml").is_file()
