"""Schedule ablations: names, one grid entry planning every variant, and masks exact against the full schedule."""

import json
import re
from pathlib import Path

import pytest
import torch

from asrprune import masks as M
from asrprune import methods, plan, schedules
from asrprune.config import validate_config
from asrprune.settings import ConfigError
from asrprune.strict_yaml import load_yaml
from asrprune.methods import PruneContext, compute_masks
from asrprune.variants import Variant, schedule_components

REPO = Path(__file__).resolve().parents[1]
WILDCARD = re.compile(r"[a-z][a-z0-9_.-]*")  # rules/common.smk's variant wildcard
AUTHORS40 = schedules.resolve_schedule("authors40")


def whisper_4x4(seed=0):
    """A random 4+4-layer Whisper (every layer third non-empty, as tiny.en's 4 layers), vocabulary tied."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    v = 80
    cfg = WhisperConfig(
        vocab_size=v, num_mel_bins=80, d_model=16, encoder_layers=4, decoder_layers=4, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_source_positions=1500,
        max_target_positions=64, pad_token_id=v - 4, bos_token_id=v - 4, eos_token_id=v - 4,
        decoder_start_token_id=v - 3, suppress_tokens=[], begin_suppress_tokens=[],
    )
    return WhisperForConditionalGeneration(cfg).eval()


def _config(entry=None):
    config = validate_config(load_yaml(REPO / "config.yaml"))
    config["pruning"]["grid"] = [entry or {"method": "schedule", "schedules": ["authors40"], "ablate": ["without", "only"]}]
    return validate_config(config)


def test_one_grid_entry_plans_the_schedule_and_every_ablation():
    ids = [v.id for v in plan.variants(_config())]
    components = list(AUTHORS40)  # every authors40 entry has a nonzero rate
    assert ids == (["baseline", "schedule-authors40"]
                   + [f"schedule-authors40-without-{c}" for c in components]
                   + [f"schedule-authors40-only-{c}" for c in components])
    assert "schedule-authors40-without-dec_ffn.first_third" in ids
    assert "schedule-authors40-only-token_embedding" in ids
    for vid in ids:
        assert WILDCARD.fullmatch(vid), vid
        assert Variant.parse(vid).id == vid
        assert plan.variant_by_id(_config(), vid).id == vid
    only = _config({"method": "schedule", "schedules": ["authors40"], "ablate": ["only"]})
    assert len(plan.variants(only)) == 2 + len(components)


def test_components_are_the_entries_with_a_nonzero_rate():
    schedule = schedules.resolve_schedule("mine", {"mine": {"dec_ffn": 30, "conv": 0, "enc.l1-2": 50}})
    assert schedule_components(schedule) == ["dec_ffn", "enc.l1-2"]


def test_ablation_ids_parse_into_their_fields():
    v = Variant.parse("schedule-authors40-without-dec_ffn.middle_third")
    assert (v.method, v.schedule, v.ablate, v.component) == ("schedule", "authors40", "without", "dec_ffn.middle_third")
    assert v.ablated and v.full_schedule == Variant.parse("schedule-authors40")
    assert not Variant.parse("schedule-authors40").ablated


@pytest.mark.parametrize("vid,needle", [("schedule-authors40-leave-conv", "unknown schedule ablation 'leave'.*without, only"),
                                        ("schedule-authors40-only-dec_mlp", "dec_mlp")])
def test_bad_ablation_ids_are_named(vid, needle):
    with pytest.raises(ValueError, match=needle):
        Variant.parse(vid)


def test_an_ablation_of_a_missing_entry_is_not_in_the_grid():
    with pytest.raises(ValueError, match="not in the config's pruning grid"):
        plan.variant_by_id(_config(), "schedule-authors40-without-enc_ffn.first_third")


def test_an_unknown_ablate_kind_is_a_named_config_error():
    with pytest.raises(ConfigError, match=r"pruning.grid\[0\].ablate: unknown schedule ablation 'leave'"):
        _config({"method": "schedule", "schedules": ["authors40"], "ablate": ["leave"]})
    with pytest.raises(ConfigError, match="ablate"):
        _config({"method": "magnitude", "targets": ["dec_ffn"], "sparsities": [50], "ablate": ["without"]})


def _reduced(schedule, keep):
    return {t: r for t, r in schedule.items() if t in keep}


@pytest.mark.parametrize("seed", [0, 1])
def test_ablation_masks_equal_the_reduced_schedule_computed_directly(seed):
    """authors40's rates are per tensor and its targets disjoint: an ablation is the reduced schedule, bit for bit."""
    model = whisper_4x4(seed)
    full = compute_masks(model, "schedule", "all", None, context=PruneContext(schedule=AUTHORS40))
    seen = set()
    for component in AUTHORS40:
        for kind, keep in (("without", set(AUTHORS40) - {component}), ("only", {component})):
            got = methods.variant_masks(model, Variant("schedule", "all", None, "authors40", kind, component),
                                        PruneContext(schedule=AUTHORS40))
            direct = compute_masks(model, "schedule", "all", None, context=PruneContext(schedule=_reduced(AUTHORS40, keep)))
            assert list(got) == list(direct), (kind, component)
            for n in got:
                assert torch.equal(got[n], direct[n]), (kind, component, n)
                assert torch.equal(got[n], full[n])  # every mask is the full schedule's own
            if kind == "only":
                assert got, component  # every entry prunes something in a 4+4-layer model
                assert not seen & set(got)
                seen |= set(got)
    assert seen == set(full)  # the `only` variants partition the full schedule's tensors


def test_realized_sparsity_is_exact_against_the_full_schedule():
    """The manifest's counts (the table's sparsity columns): without-X prunes the full count minus X's,
    and the only-X counts add up to the full schedule's."""
    model = whisper_4x4()
    base = {"name": "random", "weights_sha256": "0" * 64}

    def manifest(variant):
        ctx = PruneContext(schedule=AUTHORS40)
        keep = methods.variant_masks(model, Variant.parse(variant), ctx)
        return M.build_manifest(model, keep, variant=variant, method="schedule", target="all",
                                sparsity_requested=None, base_manifest=base, extra=ctx.notes)

    def pruned(m):
        return m["overall"]["all_params"]["pruned"]

    full = manifest("schedule-authors40")
    only = {c: manifest(f"schedule-authors40-only-{c}") for c in AUTHORS40}
    assert sum(pruned(m) for m in only.values()) == pruned(full)
    for c in AUTHORS40:
        without = manifest(f"schedule-authors40-without-{c}")
        assert pruned(without) == pruned(full) - pruned(only[c])
        total = without["overall"]["all_params"]["numel"]
        assert without["overall"]["all_params"]["sparsity"] == pytest.approx((pruned(full) - pruned(only[c])) / total, abs=0)
        # the left-out entry realizes nothing, the others exactly what the full schedule realizes there
        assert without["targets"][c]["pruned"] == 0 and without["targets"][c]["sparsity_requested"] == 0.0
        for t in AUTHORS40:
            if t != c:
                assert without["targets"][t]["pruned"] == full["targets"][t]["pruned"]
                assert only[c]["targets"][t]["pruned"] == 0
        assert without["details"]["ablation"] == {"kind": "without", "component": c,
                                                   "tensors": only[c]["details"]["ablation"]["tensors"]}
        assert without["details"]["schedule_pools"][c]["left_unpruned"]


def test_only_token_embedding_prunes_the_tied_output_projection_once():
    model = whisper_4x4()
    keep = methods.variant_masks(model, Variant.parse("schedule-authors40-only-token_embedding"),
                                 PruneContext(schedule=AUTHORS40))
    assert list(keep) == ["model.decoder.embed_tokens.weight"]  # the tied proj_out is the same tensor
    M.apply_masks(model, keep)
    assert model.proj_out.weight is model.model.decoder.embed_tokens.weight
    zero = int((model.proj_out.weight == 0).sum())
    assert zero == round(0.25 * model.proj_out.weight.numel())


def test_without_keeps_the_owner_of_overlapping_targets():
    """paper_text's enc.last_third wins the last encoder layers' FFN from enc_ffn: `without-enc.last_third`
    leaves those tensors unpruned rather than handing them to enc_ffn, and keeps enc_ffn's own masks."""
    model = whisper_4x4()
    schedule = schedules.resolve_schedule("paper_text")
    full = compute_masks(model, "schedule", "all", None, context=PruneContext(schedule=schedule))
    got = methods.variant_masks(model, Variant.parse("schedule-paper_text-without-enc.last_third"),
                                PruneContext(schedule=schedule))
    owned = {n for n, t in methods.schedule_assignment(model, schedule).items() if t == "enc.last_third"}
    assert "model.encoder.layers.3.fc1.weight" in owned
    assert set(got) == set(full) - owned
    assert all(torch.equal(got[n], full[n]) for n in got)


def test_an_ablation_of_a_zero_or_absent_entry_is_refused():
    model = whisper_4x4()
    with pytest.raises(ValueError, match=r"'dec_ffn' is not an entry of the schedule.*enc_ffn"):
        methods.variant_masks(model, Variant.parse("schedule-authors40-only-dec_ffn"), PruneContext(schedule=AUTHORS40))


def test_the_prune_stage_writes_an_ablation_mask_set(tmp_path, monkeypatch):
    from asrprune.models import load
    from asrprune.stages.prune import prune_variant

    model = whisper_4x4()
    model_dir = tmp_path / "models" / "random"
    model_dir.mkdir(parents=True)
    monkeypatch.setattr(load, "load_model", lambda path: (model, None))  # no processor: schedules read none
    (model_dir / "manifest.json").write_text(json.dumps({"name": "random", "weights_sha256": "a" * 64}))
    written = {}
    for vid in ("schedule-authors40", "schedule-authors40-without-enc_ffn"):
        written[vid] = prune_variant(model_dir, vid, {"seed": 0, "schedules": {}}, tmp_path / "masks" / vid)
    keep, manifest = M.load_mask_set(tmp_path / "masks" / "schedule-authors40-without-enc_ffn")
    assert manifest["variant"] == "schedule-authors40-without-enc_ffn"
    assert not any(".fc" in n and "encoder" in n for n in keep)
    full, without = (written[v]["overall"]["all_params"]["pruned"] for v in written)
    enc_ffn = written["schedule-authors40"]["targets"]["enc_ffn"]["pruned"]
    assert without == full - enc_ffn > 0


def _wer_table():
    """A WER table where the ablations were decoded on one set only and the rest on two."""
    import pandas as pd

    rows = []
    wer = {"baseline": 0.10, "schedule-authors40": 0.60, "schedule-authors40-without-token_embedding": 0.12,
           "schedule-authors40-without-enc_ffn": 0.70, "schedule-authors40-only-token_embedding": 0.45,
           "schedule-authors40-only-enc_ffn": 0.15, "magnitude-dec_ffn-s50": 0.2}
    sparsity = {"baseline": 0.0, "schedule-authors40": 0.30, "schedule-authors40-without-token_embedding": 0.18,
                "schedule-authors40-without-enc_ffn": 0.22, "schedule-authors40-only-token_embedding": 0.12,
                "schedule-authors40-only-enc_ffn": 0.08, "magnitude-dec_ffn-s50": 0.05}
    for model, scale in (("tiny.en", 1.0), ("base", 0.5)):
        for v, w in wer.items():
            for d in (["clean"] if "-only-" in v or "-without-" in v else ["clean", "noisy"]):
                rows.append({"model": model, "variant": v, "dataset": d, "wer": w * scale, "sparsity_overall": sparsity[v],
                             "method": v.split("-")[0], "target": "all", "wer_ci_low": w * scale - 0.01,
                             "wer_ci_high": w * scale + 0.01, "delta_wer_abs": (w - 0.1) * scale, "p_value": 0.5,
                             "predicted_damage": sparsity[v]})
    return pd.DataFrame(rows)


def test_the_findings_ablation_section_names_the_entry_that_breaks_the_model():
    from asrprune.findings import ablation_lines

    text = "\n".join(ablation_lines(_wer_table()))
    # models in the claims tables' order (asrprune.findings.claim_models), only the set the ablations were decoded on
    assert text.index("on base, clean") < text.index("on tiny.en, clean")
    assert "noisy" not in text
    tiny = text[text.index("on tiny.en"):]
    assert "| schedule-authors40-without-token_embedding | 18.0 % | 12.00 | -48.00 | +2.00 |" in tiny
    assert "Removing `token_embedding` restores the most: 12.00 % WER" in tiny
    assert "Alone, `token_embedding` does the most damage: 45.00 % WER (+35.00" in tiny
    # only-X deltas: +35 and +5 = +40 points; together +50: they compound
    assert "add up to +40.00 points against the baseline; all of them together, +50.00 (they compound)." in tiny
    assert ablation_lines(_wer_table().query("~variant.str.contains('-only-|-without-')")) == []


def test_plots_draw_a_table_with_missing_variant_set_pairs(tmp_path):
    from asrprune import plots

    table = _wer_table()
    for name, fn in (("wer", plots.plot_wer_vs_sparsity), ("delta", plots.plot_delta_bars)):
        out = fn(table, tmp_path / f"{name}.png")
        assert Path(out).stat().st_size > 0
