"""Planning: variant ids agree with the pruning library, resources follow the config."""

import copy
from pathlib import Path

from asrprune import methods, plan
from asrprune.config import load_yaml, validate_config

REPO = Path(__file__).resolve().parents[1]


def _config():
    config = validate_config(load_yaml(REPO / "config.yaml"))
    config["pruning"]["grid"] += [
        {"method": "global", "sparsities": [40]},
        {"method": "allocate", "sparsities": [40]},
        {"method": "wanda", "targets": ["dec_self_attn", "enc.last_third"], "sparsities": [50]},
        {"method": "schedule", "schedules": ["authors40"]},
    ]
    return config


def test_planned_variant_ids_parse_back_to_the_same_method_target_and_sparsity():
    for v in plan.variants(_config())[1:]:
        spec = methods.parse_variant(v.id)
        assert spec.method == v.method
        if v.method == "schedule":
            assert spec.schedule == v.target
        else:
            assert (spec.target, round(spec.sparsity * 100)) == (v.target, v.sparsity)
        assert methods.variant_id(spec) == v.id
        assert v.needs_fisher == (v.method in methods.NEEDS_FISHER)
        assert v.needs_calib == (v.method in methods.NEEDS_ACTIVATIONS)


def test_duplicate_grid_entries_plan_one_variant():
    config = _config()
    config["pruning"]["grid"].append(copy.deepcopy(config["pruning"]["grid"][0]))
    ids = [v.id for v in plan.variants(config)]
    assert len(ids) == len(set(ids))
    assert "global-all-s40" in ids and "schedule-authors40" in ids


def test_gpu_requests_reach_only_sensitivity_and_decoding():
    config = _config()
    config["resources"] = {"default": {"gpu": 1, "gpu_model": "a100", "mem_mb": 8000}, "decode": {"runtime": 30}}
    assert plan.rule_resources(config, "decode") == {"gpu": 1, "gpu_model": "a100", "mem_mb": 8000, "runtime": 30, "cpus_per_task": 1}
    config["resources"]["sensitivity"] = {"threads": 6}
    assert plan.rule_resources(config, "sensitivity")["cpus_per_task"] == 6
    assert plan.rule_threads(config, "sensitivity") == 6
    assert plan.rule_resources(config, "sensitivity")["gpu"] == 1
    for rule in ("prune", "aggregate", "score", "prepare_dataset"):
        assert "gpu" not in plan.rule_resources(config, rule)


def test_every_test_set_is_decoded_with_every_variant():
    config = _config()
    targets = plan.decode_targets(config)
    assert len(targets) == len(plan.variants(config)) * 3
    assert "results/decode/tiny.en/baseline/ivr.parquet" in targets


def test_sorted_config_keeps_lists_and_values():
    config = {"b": {"z": 1, "a": [{"y": 2, "x": 3}]}, "a": 0}
    out = plan.sort_keys(config)
    assert out == config
    assert list(out) == ["a", "b"] and list(out["b"]) == ["a", "z"] and list(out["b"]["a"][0]) == ["x", "y"]


def test_speed_only_settings_stay_out_of_the_decode_params():
    config = _config()
    config["decoding"].update(backend="generate", encoder_cache_mb=10)
    assert "backend" not in plan.transcript_settings(config)
    assert "encoder_cache_mb" not in plan.transcript_settings(config)
    assert plan.transcript_settings(config)["max_tokens_margin"] == config["decoding"]["max_tokens_margin"]
    assert plan.speed_settings(config) == {"backend": "generate", "encoder_cache": True, "encoder_cache_mb": 10}
