"""OBD predicted damage: a hand-computed case, the magnitude curve against real masks, predicted.parquet."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from asrprune import masks as M
from asrprune.damage import (
    PREDICTED_COLUMNS,
    magnitude_damage_curve,
    predicted_damage,
    predicted_damage_per_tensor,
)
from asrprune.components import target_tensors
from asrprune.methods import PruneContext, compute_masks, pooled_masks
from asrprune.stages.predict_damage import run_predict
from asrprune.stages.sensitivity import save_fisher
from conftest import make_tiny_whisper


def test_obd_damage_by_hand():
    fisher = {"a": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": torch.tensor([10.0, 0.0])}
    weights = {"a": torch.tensor([[1.0, -1.0], [2.0, 0.5]]), "b": torch.tensor([-0.1, 7.0], dtype=torch.float64)}
    removed = {"a": torch.tensor([[True, False], [False, True]]), "b": torch.tensor([True, True])}
    # ½(1·1² + 4·0.5²) = 1.0 ; ½(10·0.1² + 0·7²) = 0.05
    per = predicted_damage_per_tensor(fisher, weights, removed)
    assert per == pytest.approx({"a": 1.0, "b": 0.05}, rel=1e-12)
    assert predicted_damage(fisher, weights, removed) == pytest.approx(1.05, rel=1e-12)
    assert predicted_damage(fisher, weights, {"a": torch.zeros(2, 2, dtype=torch.bool)}) == 0.0
    with pytest.raises(ValueError, match="shape"):
        predicted_damage(fisher, weights, {"a": torch.zeros(4, dtype=torch.bool)})
    with pytest.raises(ValueError, match="Fisher has no entry"):
        predicted_damage(fisher, {**weights, "c": torch.ones(1)}, {"c": torch.ones(1, dtype=torch.bool)})


def _random_fisher(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(p.shape, generator=g) for n, p in model.named_parameters()}


@pytest.mark.parametrize("target", ["dec_self_attn", "enc", "all"])
def test_magnitude_curve_equals_damage_of_real_masks(target):
    model = make_tiny_whisper()
    with torch.no_grad():  # exact ties in |w|, so the tie order must match the mask's too
        p = dict(model.named_parameters())["model.decoder.layers.0.self_attn.q_proj.weight"]
        p[:4] = 0.01
        p[4:6] = -0.01
    fisher = _random_fisher(model)
    weights = {n: p.detach() for n, p in model.named_parameters()}
    names = target_tensors(model, target)
    sparsities = [0.0, 0.1, 0.3, 0.5, 0.77, 1.0]
    curve = magnitude_damage_curve(fisher, weights, names, sparsities)
    assert list(curve) == sparsities
    for s in sparsities:
        keep = pooled_masks({n: weights[n].abs() for n in names}, s)
        brute = predicted_damage(fisher, weights, {n: ~m for n, m in keep.items()})
        assert curve[s] == pytest.approx(brute, rel=1e-9, abs=1e-12), s
    assert curve[0.0] == 0.0
    values = [curve[s] for s in sparsities]
    assert values == sorted(values)


def test_curve_refuses_percent():
    model = make_tiny_whisper()
    w = {n: p.detach() for n, p in model.named_parameters()}
    with pytest.raises(ValueError, match="fraction"):
        magnitude_damage_curve(_random_fisher(model), w, target_tensors(model, "dec_ffn"), [50])


def test_run_predict_writes_one_row_per_mask_set(tmp_path):
    model = make_tiny_whisper()
    model_dir = tmp_path / "models" / "tiny-random"
    model.save_pretrained(model_dir)
    (model_dir / "manifest.json").write_text(json.dumps({"name": "tiny-random", "weights_sha256": "a" * 64}))
    fisher = _random_fisher(model)
    save_fisher(fisher, tmp_path / "fisher.safetensors")
    base = {"name": "tiny-random", "weights_sha256": "a" * 64}
    dirs, expected = [], {}
    for method, target, sparsity in [("baseline", None, None), ("magnitude", "dec_self_attn", 0.5), ("magnitude", "embeddings", 0.3)]:
        keep = compute_masks(model, method, target, sparsity, context=PruneContext())
        variant = "baseline" if method == "baseline" else f"{method}-{target}-s{round(100 * sparsity)}"
        manifest = M.build_manifest(model, keep, variant=variant, method=method, target=target,
                                    sparsity_requested=sparsity, base_manifest=base)
        out = tmp_path / "masks" / variant
        M.save_mask_set(keep, manifest, out)
        dirs.append(out)
        # OBD computed here another way: ½ Σ F w² over the removed weights, in float64 with numpy
        params = dict(model.named_parameters())
        damage = sum(0.5 * float(np.sum(fisher[n].double().numpy()[~m.numpy()] * params[n].detach().double().numpy()[~m.numpy()] ** 2))
                     for n, m in keep.items())
        expected[variant] = (damage, sum(int((~m).sum()) for m in keep.values()))
    table = run_predict(model_dir, tmp_path / "fisher.safetensors", dirs, tmp_path / "predicted.parquet")
    back = pd.read_parquet(tmp_path / "predicted.parquet")
    assert list(back.columns) == PREDICTED_COLUMNS and len(back) == 3
    pd.testing.assert_frame_equal(back, table)
    by = back.set_index("variant")
    assert by.loc["baseline", "predicted_damage"] == 0.0 and by.loc["baseline", "n_pruned"] == 0
    assert by.loc["magnitude-dec_self_attn-s50", "sparsity"] == 0.5
    for v, (damage, n_pruned) in expected.items():
        assert by.loc[v, "predicted_damage"] == pytest.approx(damage, rel=1e-6, abs=1e-12), v
        assert by.loc[v, "n_pruned"] == n_pruned, v
    assert by.loc["magnitude-embeddings-s30", "predicted_damage"] > 0
    assert expected["magnitude-dec_self_attn-s50"][1] == sum(
        p.numel() for n, p in model.named_parameters() if n in target_tensors(model, "dec_self_attn")) // 2
