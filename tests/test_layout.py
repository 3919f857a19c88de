"""Experiments side by side: results/{name}/ per experiment, a store keyed by definition, and the checks
that keep two experiments from writing over each other (asrprune.layout.Layout)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from asrprune import layout, plan
from asrprune.config import validate_config
from asrprune.settings import ConfigError
from asrprune.strict_yaml import load_yaml

REPO = Path(__file__).resolve().parents[1]


def _config(path: Path = REPO / "config.yaml") -> dict:
    return validate_config(load_yaml(path))


def test_every_experiment_path_is_under_its_name_and_shared_work_under_the_store():
    default, study = _config(), _config(REPO / "config/study.yaml")
    assert layout.experiment_name(default) == "default" and layout.experiment_name(study) == "study"
    for config in (default, study):
        exp = layout.experiment_layout(config)
        targets = plan.final_targets(config, exp.experiment) + plan.intermediate_targets(config, exp.experiment, exp.store)
        outside = [t for t in targets if not (t.startswith(exp.experiment + "/") or t.startswith(exp.store + "/"))]
        # only what the config itself publishes elsewhere (the study's findings.dir: docs)
        assert all(t.startswith(plan.findings_dir(config, exp.experiment) + "/") for t in outside)
        assert bool(outside) == bool(config.get("findings"))
        assert f"{exp.experiment}/tables/wer.parquet" in targets and f"{exp.experiment}/data/ivr.parquet" in targets
        shared = [t for t in targets if t.startswith(exp.store + "/")]
        assert {t.split("/")[2] for t in shared} == {"models", "data"}


def test_a_name_without_a_config_name_is_default():
    config = _config()
    del config["name"]
    assert layout.experiment_layout(config).experiment == "results/default"


def test_the_same_definition_shares_a_store_path_and_another_never_does():
    default, study = _config(), _config(REPO / "config/study.yaml")
    # tiny.en is defined identically in both: one conversion
    assert layout.model_dir(default, "tiny.en", "results/store") == layout.model_dir(study, "tiny.en", "results/store")
    # ivr: 48 prompts in the default, every prompt in the study: two paths under one name
    assert layout.dataset_file(default, "ivr", "s") != layout.dataset_file(study, "ivr", "s")
    same = copy.deepcopy(default)
    same["name"] = "other"  # the experiment's name is not part of what defines a data set
    assert layout.dataset_file(same, "ivr", "s") == layout.dataset_file(default, "ivr", "s")


def test_a_derived_set_changes_key_when_its_source_does():
    config = _config()
    before = layout.dataset_key(config, "tts_noisy")
    config["datasets"]["tts_clean"]["max_utts"] = 12  # tts_noisy's own entry is unchanged
    assert layout.dataset_key(config, "tts_noisy") != before
    config = _config()
    config["full_data"] = True
    assert layout.dataset_key(config, "ivr") != layout.dataset_key(_config(), "ivr")


def test_a_store_path_asked_under_another_key_is_refused():
    config = _config()
    key = layout.dataset_key(config, "ivr")
    layout.check_store_key("dataset", "ivr", key, key)
    with pytest.raises(ValueError, match=r"dataset 'ivr': store key 000000000000 is not this config's definition"):
        layout.check_store_key("dataset", "ivr", "000000000000", key)


def test_another_config_under_the_same_name_is_refused_and_an_edited_one_is_not():
    record = {"sources": ["/a/config.yaml"], "config_hash": "aaa"}
    layout.check_experiment_record(None, ["/b/x.yaml"], "bbb", "default", "results/default/experiment.json")
    layout.check_experiment_record(record, ["/a/config.yaml"], "bbb", "default", "w")  # the same file, edited
    layout.check_experiment_record(record, ["/b/copy.yaml"], "aaa", "default", "w")  # a copy of the same experiment
    with pytest.raises(ValueError, match=r"experiment 'default': .* was written from /a/config.yaml .*"
                                         r"defines another experiment under the same name; give it its own `name:`"):
        layout.check_experiment_record(record, ["/b/x.yaml"], "bbb", "default", "results/default/experiment.json")


def test_a_results_folder_of_the_old_layout_is_named(tmp_path):
    assert layout.legacy_outputs(tmp_path) == []
    (tmp_path / "default" / "tables").mkdir(parents=True)
    (tmp_path / "store" / "data").mkdir(parents=True)
    assert layout.legacy_outputs(tmp_path) == []  # the new layout is not mistaken for the old one
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "wer.parquet").write_bytes(b"x")
    found = layout.legacy_outputs(tmp_path)
    assert found == [str(tmp_path / "tables")]
    assert "mv " in layout.legacy_layout_message(str(tmp_path), found, "default")


@pytest.mark.parametrize("name", ["store", "tables", "data"])
def test_a_name_the_layout_uses_is_refused(name):
    config = load_yaml(REPO / "config.yaml")
    config["name"] = name
    with pytest.raises(ConfigError, match=rf"name = '{name}': reserved"):
        validate_config(config)


def test_a_name_that_is_not_a_folder_name_is_refused():
    config = load_yaml(REPO / "config.yaml")
    config["name"] = "../elsewhere"
    with pytest.raises(ConfigError, match=r"name"):
        validate_config(config)
