"""Mask sets: bit-packed round trip, manifests, refusal of foreign bases and shapes, export equivalence."""

import json

import pytest
import torch

from asrprune import masks as M
from asrprune.methods import PruneContext, compute_masks
from asrprune.schedules import resolve_schedule
from conftest import make_tiny_whisper

BASE = {"name": "tiny-random", "weights_sha256": "a" * 64}


def mask_set(model, tmp_path, method="magnitude", target="dec_self_attn", sparsity=0.5, variant=None, context=None):
    context = context or PruneContext()
    masks = compute_masks(model, method, target, sparsity, context=context)
    manifest = M.build_manifest(
        model, masks, variant=variant or f"{method}-{target}-s{round(100 * (sparsity or 0))}", method=method,
        target=target, sparsity_requested=sparsity, base_manifest=BASE, extra=context.notes,
    )
    out = tmp_path / "masks" / manifest["variant"]
    return masks, M.save_mask_set(masks, manifest, out), out


def hand_packed(mask: torch.Tensor) -> list[int]:
    """The documented layout, by hand: byte j holds elements 8j..8j+7 (row-major), element 8j+i in bit i."""
    bits = [int(b) for b in mask.reshape(-1).tolist()]
    return [sum(bits[j + i] << i for i in range(8) if j + i < len(bits)) for j in range(0, len(bits), 8)]


def test_pack_unpack_round_trip_odd_sizes():
    assert M.pack_mask(torch.tensor([True, False, False, False, False, False, False, False, True, True])).tolist() == [1, 3]
    assert M.pack_mask(torch.tensor([[False, True, True], [True, False, False]])).tolist() == [0b001110]
    g = torch.Generator().manual_seed(0)
    for shape in [(1,), (7,), (3, 5), (16, 80, 3), (9, 9)]:
        m = torch.rand(shape, generator=g) > 0.5
        packed = M.pack_mask(m)
        assert packed.dtype == torch.uint8 and packed.numel() == (m.numel() + 7) // 8
        assert packed.tolist() == hand_packed(m)
        assert torch.equal(M.unpack_mask(packed, list(shape)), m)


def test_mask_set_round_trip_and_manifest(tiny_whisper, tmp_path):
    masks, manifest, out = mask_set(tiny_whisper, tmp_path)
    loaded, loaded_manifest = M.load_mask_set(out)
    assert loaded.keys() == masks.keys() and all(torch.equal(loaded[n], masks[n]) for n in masks)
    # what was stored, computed another way: pooled magnitude at 50 % of dec_self_attn's matrices keeps
    # exactly the weights above the median |w| of the pool (random weights: no ties)
    params = dict(tiny_whisper.named_parameters())
    pool = sorted(n for n in params if n.startswith("model.decoder.layers.") and ".self_attn." in n and n.endswith("_proj.weight"))
    assert sorted(loaded) == pool
    values = torch.cat([params[n].detach().abs().flatten() for n in pool])
    cut = values.sort().values[values.numel() // 2 - 1]  # the largest pruned |w|
    for n in pool:
        assert torch.equal(loaded[n], params[n].detach().abs() > cut), n
    from safetensors.numpy import load_file

    raw = load_file(str(out / "masks.safetensors"))  # the file's bytes follow the documented bit layout
    assert all(raw[n].tolist() == hand_packed(loaded[n]) for n in pool)
    assert loaded_manifest == json.loads(json.dumps(manifest))
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "masks.safetensors"]
    # Bit-packing: the payload is 1/32 of the masked tensors' float32 bytes, plus a small header.
    dense_bytes = 4 * sum(m.numel() for m in masks.values())
    assert manifest["mask_payload_bytes"] == dense_bytes // 32
    assert manifest["mask_bytes"] < manifest["mask_payload_bytes"] + 2048
    assert manifest["base_weights_sha256"] == BASE["weights_sha256"] and manifest["base_model"] == BASE["name"]
    comp = manifest["components"]["dec_self_attn"]
    assert comp["pruned"] == comp["numel"] // 2 and comp["sparsity"] == 0.5
    assert manifest["targets"]["dec_self_attn"]["sparsity_requested"] == 0.5
    assert manifest["components"]["enc_ffn"]["pruned"] == 0
    total_pruned = sum(t["pruned"] for t in manifest["tensors"].values())
    assert manifest["overall"]["all_params"]["pruned"] == total_pruned
    assert manifest["overall"]["all_params"]["numel"] == manifest["params_total"]
    assert manifest["tied"] == ["proj_out.weight -> model.decoder.embed_tokens.weight"]
    flops = manifest["flops"]
    assert flops["decoder_per_token_mflops"] < flops["decoder_per_token_mflops_dense"]
    assert flops["encoder_per_window_gflops"] == flops["encoder_per_window_gflops_dense"]


def test_baseline_is_an_empty_mask_set(tiny_whisper, tmp_path):
    masks, manifest, out = mask_set(tiny_whisper, tmp_path, method="baseline", target=None, sparsity=None, variant="baseline")
    assert masks == {} and manifest["tensors"] == {}
    assert manifest["overall"]["all_params"]["pruned"] == 0
    before = {n: p.detach().clone() for n, p in tiny_whisper.named_parameters()}
    M.apply_mask_set(tiny_whisper, out, BASE)
    assert all(torch.equal(before[n], p) for n, p in tiny_whisper.named_parameters())


def test_schedule_manifest_reports_every_target(tiny_whisper, tmp_path):
    ctx = PruneContext(schedule=resolve_schedule("paper_text"))
    _, manifest, _ = mask_set(tiny_whisper, tmp_path, method="schedule", target="all", sparsity=None,
                              variant="schedule-paper_text", context=ctx)
    assert set(manifest["targets"]) == set(ctx.schedule)
    for t, rate in ctx.schedule.items():
        s = rate.sparsity
        assert manifest["details"]["schedule_pools"][t]["sparsity"] == pytest.approx(s, abs=0.01)
        assert manifest["targets"][t]["sparsity"] >= s - 0.01  # a tensor may be won by a sparser target


def test_applying_to_another_base_is_refused_naming_both_hashes(tiny_whisper, tmp_path):
    _, _, out = mask_set(tiny_whisper, tmp_path)
    other = {"name": "other-model", "weights_sha256": "b" * 64}
    with pytest.raises(ValueError) as err:
        M.apply_mask_set(tiny_whisper, out, other)
    msg = str(err.value)
    assert "a" * 64 in msg and "b" * 64 in msg and "tiny-random" in msg and "other-model" in msg


def test_wrong_shape_and_unknown_tensor_are_refused_before_any_change(tiny_whisper):
    name = "model.decoder.layers.0.fc1.weight"
    before = tiny_whisper.get_parameter(name).detach().clone()
    with pytest.raises(ValueError, match=r"fc1.weight.*\(3, 3\).*\(32, 16\)"):
        M.apply_masks(tiny_whisper, {"model.decoder.layers.0.fc2.weight": torch.zeros(16, 32, dtype=torch.bool),
                                     name: torch.zeros(3, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="no such tensor"):
        M.apply_masks(tiny_whisper, {"model.decoder.layers.9.fc1.weight": torch.zeros(3, 3, dtype=torch.bool)})
    assert torch.equal(tiny_whisper.get_parameter(name), before)
    assert tiny_whisper.get_parameter("model.decoder.layers.0.fc2.weight").count_nonzero() > 0


def test_mask_set_for_a_differently_shaped_model_is_refused(tmp_path):
    _, _, out = mask_set(make_tiny_whisper(), tmp_path, target="dec_ffn")
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    cfg = make_tiny_whisper().config.to_dict()
    cfg.update(decoder_ffn_dim=48)
    other = WhisperForConditionalGeneration(WhisperConfig(**cfg))
    with pytest.raises(ValueError, match="shape"):
        M.apply_mask_set(other, out, BASE)


def test_export_reloads_to_the_same_logits(tmp_path):
    from transformers import WhisperForConditionalGeneration

    model = make_tiny_whisper(seed=2)
    _, manifest, out = mask_set(model, tmp_path, target="embeddings", sparsity=0.3)
    exported = M.export_variant(model, None, out, BASE, tmp_path / "export")
    assert exported["mask_set"]["variant"] == manifest["variant"] and exported["base_weights_sha256"] == BASE["weights_sha256"]
    reloaded = WhisperForConditionalGeneration.from_pretrained(tmp_path / "export").eval()
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 80, 3000, generator=g)
    ids = torch.randint(0, 76, (2, 6), generator=g)
    with torch.no_grad():
        a = model(input_features=feats, decoder_input_ids=ids).logits
        b = reloaded(input_features=feats, decoder_input_ids=ids).logits
    assert torch.equal(a, b)
    # The tie survived the round trip: the pruned embedding is the pruned projection.
    assert reloaded.proj_out.weight is reloaded.model.decoder.embed_tokens.weight
    zeros = reloaded.proj_out.weight == 0
    assert zeros.any() and torch.equal(zeros, model.proj_out.weight == 0)


def tiny_en_shaped():
    """Random weights with whisper tiny.en's shapes (for byte counts only)."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    cfg = WhisperConfig(vocab_size=51864, d_model=384, encoder_layers=4, decoder_layers=4, encoder_attention_heads=6,
                        decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536, num_mel_bins=80,
                        max_source_positions=1500, max_target_positions=448)
    return WhisperForConditionalGeneration(cfg).eval()


def test_single_component_mask_set_is_under_one_percent_of_the_checkpoint(tmp_path):
    _, manifest, _ = mask_set(tiny_en_shaped(), tmp_path, target="dec_self_attn", sparsity=0.5)
    assert manifest["params_total"] == 37_760_256  # tiny.en by its shapes, tied projection counted once
    assert manifest["mask_bytes_fraction"] < 0.01
