"""A bad config stops before any job, with a message that names the key and what was expected."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from asrprune.config import validate_config
from asrprune.settings import ConfigError, dataset_option, schema
from asrprune.strict_yaml import load_yaml
from asrprune import plan

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def default_config():
    return load_yaml(REPO / "config.yaml")


def test_default_config_is_valid_and_plans_the_issue_grid(default_config):
    config = validate_config(default_config)
    assert [v.id for v in plan.variants(config)] == [
        "baseline",
        "magnitude-dec_self_attn-s30",
        "magnitude-dec_self_attn-s50",
        "magnitude-dec_ffn-s30",
        "magnitude-dec_ffn-s50",
        "magnitude-enc.last_third-s30",
        "magnitude-enc.last_third-s50",
    ]
    assert plan.evaluation_sets(config) == ["ivr", "tts_clean", "tts_noisy"]
    assert config["calibration"]["fisher_mode"] == "empirical"


def _set(config, path, value):
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return config


BAD = [
    (("pruning", "grid", 0, "sparsities"), [30, 150], r"pruning\.grid\[0\]\.sparsities\[1\] = 150.*less than 100"),
    (("pruning", "grid", 0, "sparsities"), [0], r"sparsities\[0\] = 0.*greater than 0"),
    (("pruning", "grid", 0, "sparsities"), ["50"], r"sparsities\[0\] = '50': expected integer"),
    (("decoding", "batch_size"), "eight", r"decoding\.batch_size = 'eight': expected integer"),
    (("decoding", "beam_width"), 4, r"unknown key 'beam_width' in decoding: expected one of \[.*'num_beams'"),
    (("pruning", "grid", 0, "method"), "prune_harder", r"method = 'prune_harder': expected one of \['magnitude'"),
    (("pruning", "grid", 0, "targets"), ["dec_selfattn"], r"unknown pruning target 'dec_selfattn'"),
    (("pruning", "grid"), [], r"pruning\.grid is empty"),
    (("calibration", "dataset"), "librispeech", r"calibration\.dataset = 'librispeech': expected one of the datasets"),
    (("calibration", "fisher_mode"), "exact", r"fisher_mode = 'exact': expected one of \['empirical', 'true'\]"),
    (("models", "tiny.en"), {"source": "hub"}, r"'repo_id' is a required property"),
    (("models", "tiny.en"), {"source": "zenodo"}, r"source = 'zenodo': expected one of"),
    (("datasets", "tts_noisy", "of"), "tts_dirty", r"datasets\.tts_noisy\.of = 'tts_dirty'"),
]


@pytest.mark.parametrize("path,value,message", BAD, ids=[".".join(map(str, b[0])) + f"={b[1]!r}" for b in BAD])
def test_bad_values_are_named(default_config, path, value, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(_set(copy.deepcopy(default_config), path, value))


def test_unknown_top_level_key(default_config):
    default_config["sparsity_grid"] = [10]
    with pytest.raises(ConfigError, match=r"unknown key 'sparsity_grid' in <top level>"):
        validate_config(default_config)


def test_a_test_set_cannot_be_the_calibration_set(default_config):
    default_config["calibration"]["dataset"] = "ivr"
    with pytest.raises(ConfigError, match="datasets.ivr.role must be 'calibration'"):
        validate_config(default_config)


def test_duplicate_dataset_names_are_refused(tmp_path):
    text = (REPO / "config.yaml").read_text().replace("  tts_clean:", "  ivr:", 1)
    bad = tmp_path / "dup.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=r"duplicate key 'ivr' at line \d+"):
        load_yaml(bad)


def test_bare_yaml_true_means_true_fisher(default_config):
    default_config["calibration"]["fisher_mode"] = True
    assert validate_config(default_config)["calibration"]["fisher_mode"] == "true"


@pytest.mark.workflow
def test_snakemake_stops_before_any_job(tmp_path, default_config):
    default_config["pruning"]["grid"][0]["sparsities"] = [30, 150]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(default_config))
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(bad), "--directory", str(tmp_path / "wd"), "-s", str(REPO / "Snakefile")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode != 0
    assert "pruning.grid[0].sparsities[1] = 150" in out.stdout + out.stderr
    assert not (tmp_path / "wd" / "results").exists()


def test_data_set_defaults_come_from_the_schema_and_stay_out_of_the_config(default_config):
    """A data set's build options (seed, voices, columns, ...) default from the schema, the one place
    defaults live, but only where they are read: filling them into the config would change every
    data set's store key (asrprune.layout.dataset_key) and rebuild it."""
    config = validate_config(default_config)
    applied_on_read = {k for k, sub in schema()["$defs"]["dataset"]["properties"].items() if sub.get("x-applied-when-read")}
    assert {"seed", "voices", "prefix", "on_long", "on_empty_reference", "audio_column"} <= applied_on_read
    written = load_yaml(REPO / "config.yaml")["datasets"]
    for name, spec in config["datasets"].items():
        assert applied_on_read & set(spec) == applied_on_read & set(written[name]), name  # none filled in
    assert "seed" not in config["datasets"]["ivr"]
    assert config["datasets"]["ivr"]["role"] == "test"  # not marked: filled in, as the config hash has it
    ivr = config["datasets"]["ivr"]
    assert dataset_option(ivr, "seed") == 0 and dataset_option({**ivr, "seed": 7}, "seed") == 7
    assert dataset_option(ivr, "voices") == ["festival:cmu_us_slt_arctic_hts", "flite:rms", "flite:awb"]
    assert dataset_option({"audio_column": "wav"}, "audio_column") == "wav"
