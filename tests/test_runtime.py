"""Stages run the same way from Snakemake and from a notebook: the Job view, and the one adapter."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from asrprune import stages
from asrprune.job import Files, Job

REPO = Path(__file__).resolve().parents[1]


def test_files_by_position_and_by_name():
    files = Files("x.parquet", model="results/models/m", masks=["a", "b"])
    assert list(files) == ["x.parquet", "results/models/m", "a", "b"] and files[0] == "x.parquet"
    assert files.model == files["model"] == "results/models/m"
    assert files.masks == ["a", "b"] and files.as_list("model") == ["results/models/m"]
    assert files.get("fisher") is None and dict(files.items()) == {"model": "results/models/m", "masks": ["a", "b"]}
    with pytest.raises(AttributeError, match="no file named 'fisher'"):
        files.fisher


def test_a_job_from_snakemake_keeps_positions_names_and_one_element_lists():
    from snakemake.iocontainers import InputFiles, Log, OutputFiles, Params, Wildcards

    inputs = InputFiles(["results/models/m", "a", "b", "only"])
    inputs._set_name("model", 0)
    inputs._set_name("masks", 1, 3)
    inputs._set_name("one", 3, 4)  # a list function's one-element result (older Snakemake: the plain path)
    outputs = OutputFiles(["out.parquet"])
    params = Params(fromdict={"decoding": {"batch_size": 8}, "cache_dir": "c"})
    wildcards = Wildcards(fromdict={"model": "m", "variant": "baseline"})

    smk = SimpleNamespace(input=inputs, output=outputs, params=params, wildcards=wildcards, log=Log(["x.log"]),
                          threads=2, config={"name": "c"})
    job = Job.from_snakemake(smk)
    assert list(job.input) == ["results/models/m", "a", "b", "only"]
    assert job.input.model == "results/models/m" and job.input.masks == ["a", "b"]
    assert job.input.as_list("one") == ["only"] and job.input.as_list("model") == ["results/models/m"]
    assert job.output[0] == "out.parquet"
    assert job.params == {"decoding": {"batch_size": 8}, "cache_dir": "c"}
    assert job.wildcards == {"model": "m", "variant": "baseline"}
    assert (job.threads, job.log, job.config) == (2, "x.log", {"name": "c"})


def test_every_rule_script_is_the_same_adapter_of_its_stage():
    scripts = sorted(p.stem for p in (REPO / "scripts").glob("*.py"))
    assert scripts == sorted(stages.STAGES)
    for name in stages.STAGES:
        text = (REPO / "scripts" / f"{name}.py").read_text()
        code = [line for line in text.splitlines() if line and not line.startswith(('"""', "#"))]
        assert code == ["from asrprune.runtime import run_stage", f'run_stage(snakemake, "{name}")  # noqa: F821 '
                        "(injected by Snakemake's `script:` directive)"], name
        assert callable(importlib.import_module(f"asrprune.stages.{name}").run)
    named = {m for p in (REPO / "rules").glob("*.smk") for m in re.findall(r'"\.\./scripts/(\w+)\.py"', p.read_text())}
    assert named == set(stages.STAGES)


def test_an_unknown_stage_is_named():
    with pytest.raises(ValueError, match="stage 'decoder': no such stage"):
        stages.run("decoder", Job())


def test_a_stage_runs_from_a_hand_built_job(tmp_path):
    import pandas as pd

    from asrprune.io import write_parquet

    decoded = tmp_path / "d.parquet"
    write_parquet(pd.DataFrame({"id": ["u1"], "reference": ["hello world"], "hypothesis": ["hello word"],
                                "hit_token_limit": [False], "duration_s": [1.0], "decode_s": [0.1]}), decoded)
    out = tmp_path / "s.parquet"
    stages.run("score", Job(input=Files(decoded), output=Files(out), params={"loop_min_repeats": 4}))
    assert len(pd.read_parquet(out)) == 1


def test_one_manifest_reader_names_what_is_wrong(tmp_path):
    from asrprune.io import read_manifest

    with pytest.raises(FileNotFoundError, match=r"m/manifest\.json: no such file; expected a model directory"):
        read_manifest(tmp_path / "m", "a model directory")
    (tmp_path / "manifest.json").write_text("{name:")
    with pytest.raises(ValueError, match=r"manifest\.json: not valid JSON .*; expected a mask-set manifest"):
        read_manifest(tmp_path, "a mask-set manifest")
    (tmp_path / "manifest.json").write_text("[1]")
    with pytest.raises(ValueError, match=r"holds a JSON list, not an object"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"name": "tiny.en"}')
    assert read_manifest(tmp_path) == {"name": "tiny.en"}
