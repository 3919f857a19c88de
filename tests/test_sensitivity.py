"""Sensitivity: exact per-utterance Fisher and Taylor scores against brute force, padding, labels, tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from asrprune.batches import IGNORE_INDEX, Batch, encode_targets
from asrprune.labels import check_labels, utterance_targets
from asrprune.plots import plot_sensitivity_heatmap
from asrprune.batches import select_utterances
from asrprune.sensitivity import (
    SCORES,
    TENSOR_COLUMNS,
    component_rollup,
    per_utterance_fisher_and_taylor,
    sensitivity_tables,
    sequence_nll,
)
from conftest import make_tiny_whisper

SOT, NO_TS = 77, 78  # the tiny model's start-of-transcript and a stand-in no-timestamps token
EOS = 76


class _CharTokenizer:
    """Characters to ids below the special tokens: enough for a real label layout."""

    def encode(self, text, add_special_tokens=False):
        return [ord(c) % 60 for c in text]


def make_batch(texts: list[str], seed: int = 0, dtype=torch.float64, extra_pad: int = 0) -> Batch:
    """Random log-Mel features and teacher-forcing targets of different lengths (so rows are padded)."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(len(texts), 80, 3000, generator=g, dtype=dtype)
    inputs, labels = encode_targets(_CharTokenizer(), texts, [SOT, NO_TS], EOS)
    if extra_pad:
        inputs = torch.cat([inputs, torch.full((len(texts), extra_pad), EOS)], 1)
        labels = torch.cat([labels, torch.full((len(texts), extra_pad), IGNORE_INDEX)], 1)
    return Batch([f"u{i}" for i in range(len(texts))], texts, [1.0] * len(texts), feats, inputs, labels)


TEXTS = ["ab", "hello there", "xyz q", "a much longer one"]


@pytest.fixture(scope="module")
def model64():
    return make_tiny_whisper().double()


def brute_force(model, batch: Batch) -> tuple[dict, dict, dict]:
    """One plain backward per utterance on the padded batch row: Σ g², Σ |w g|, and the mean gradient."""
    params = dict(model.named_parameters())
    for p in params.values():
        p.requires_grad_(True)
    sq = {n: torch.zeros_like(p) for n, p in params.items()}
    ab = {n: torch.zeros_like(p) for n, p in params.items()}
    mean = {n: torch.zeros_like(p) for n, p in params.items()}
    n_u = batch.input_features.shape[0]
    for u in range(n_u):
        model.zero_grad(set_to_none=True)
        logits = model(input_features=batch.input_features[u : u + 1], decoder_input_ids=batch.decoder_input_ids[u : u + 1]).logits
        sequence_nll(logits, batch.labels[u : u + 1]).sum().backward()
        for n, p in params.items():
            g = p.grad.detach()
            sq[n] += g * g / n_u
            ab[n] += (p.detach() * g).abs() / n_u
            mean[n] += g / n_u
    model.zero_grad(set_to_none=True)
    return sq, ab, mean


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Norm-wise relative error; 0 when both are zero (zero-initialised biases have a zero Taylor score)."""
    scale = b.norm()
    return float((a - b).norm() / scale) if scale > 0 else float(a.norm())


@pytest.fixture(scope="module")
def reference(model64):
    batch = make_batch(TEXTS)
    return batch, brute_force(model64, batch)


@pytest.mark.parametrize("method", ["loop", "vmap"])
def test_fisher_and_taylor_equal_brute_force(model64, reference, method):
    batch, (sq, ab, mean) = reference
    res = per_utterance_fisher_and_taylor(model64, [batch], method=method, chunk_size=3, progress=False)
    assert res.n_utts == 4 and set(res.fisher) == set(sq)
    assert "proj_out.weight" not in res.fisher  # tied to embed_tokens: counted once
    enc = [n for n in sq if n.startswith("model.encoder.") and sq[n].abs().sum() > 0]
    dec = [n for n in sq if n.startswith("model.decoder.") and sq[n].abs().sum() > 0]
    assert len(enc) > 20 and len(dec) > 30
    for n in sq:
        if sq[n].abs().sum() == 0:
            assert res.fisher[n].abs().sum() == 0, n
            continue
        assert rel_err(res.fisher[n], sq[n]) <= 1e-5, n
        assert rel_err(res.taylor[n], ab[n]) <= 1e-5, n


def test_fisher_is_not_the_squared_mean_gradient(model64, reference):
    batch, (sq, _, mean) = reference
    res = per_utterance_fisher_and_taylor(model64, [batch], progress=False)
    for n in ["model.encoder.layers.0.fc1.weight", "model.decoder.layers.1.self_attn.q_proj.weight", "model.decoder.embed_tokens.weight"]:
        squared_mean = mean[n] ** 2
        # E[g²] >= (E g)²; with 4 different utterances the gap is large, so a test can tell them apart
        assert rel_err(squared_mean, res.fisher[n]) > 0.2, n
        assert float(res.fisher[n].sum()) > 1.5 * float(squared_mean.sum()), n


@pytest.mark.parametrize("method", ["loop", "vmap"])
def test_padding_does_not_change_the_fisher(model64, method):
    plain = per_utterance_fisher_and_taylor(model64, [make_batch(TEXTS)], method=method, progress=False)
    padded = per_utterance_fisher_and_taylor(model64, [make_batch(TEXTS, extra_pad=5)], method=method, progress=False)
    assert plain.n_label_tokens == padded.n_label_tokens
    for n in plain.fisher:
        torch.testing.assert_close(padded.fisher[n], plain.fisher[n], rtol=1e-9, atol=1e-14)
        torch.testing.assert_close(padded.taylor[n], plain.taylor[n], rtol=1e-9, atol=1e-14)


def test_batching_does_not_change_the_fisher(model64, reference):
    batch, _ = reference
    whole = per_utterance_fisher_and_taylor(model64, [batch], progress=False)
    split = [make_batch(TEXTS[:1]), make_batch(TEXTS[1:])]
    split[1].input_features = batch.input_features[1:]
    split[0].input_features = batch.input_features[:1]
    parts = per_utterance_fisher_and_taylor(model64, split, progress=False)
    for n in whole.fisher:
        torch.testing.assert_close(parts.fisher[n], whole.fisher[n], rtol=1e-9, atol=1e-14)


def test_prompt_is_never_a_label(model64):
    batch = make_batch(TEXTS)
    res = per_utterance_fisher_and_taylor(model64, [batch], progress=False)
    # labels: every text token and eos, never the forced <sot> <no-timestamps> prompt
    assert res.n_label_tokens == sum(len(t) + 2 for t in TEXTS)  # " " + text + eos
    assert batch.labels[:, 0].eq(IGNORE_INDEX).all()
    unshifted = make_batch(TEXTS)
    unshifted.labels = unshifted.decoder_input_ids.clone()  # <sot> as a label: the classic off-by-one
    with pytest.raises(ValueError, match="start-of-transcript"):
        check_labels(model64, unshifted)


def test_true_fisher_is_seeded_and_differs_from_empirical(model64):
    batch = make_batch(TEXTS)
    a = per_utterance_fisher_and_taylor(model64, [batch], fisher_mode="true", seed=3, progress=False)
    b = per_utterance_fisher_and_taylor(model64, [batch], fisher_mode="true", seed=3, progress=False)
    c = per_utterance_fisher_and_taylor(model64, [batch], fisher_mode="true", seed=4, progress=False)
    emp = per_utterance_fisher_and_taylor(model64, [batch], progress=False)
    n = "model.decoder.layers.0.fc1.weight"
    for k in a.fisher:
        assert torch.equal(a.fisher[k], b.fisher[k]), k
    assert rel_err(a.fisher[n], emp.fisher[n]) > 0.05
    assert rel_err(a.fisher[n], c.fisher[n]) > 0.01
    # the sampled transcript is never longer than the reference and starts after the prompt
    assert 0 < a.n_label_tokens <= emp.n_label_tokens


def test_true_fisher_vmap_equals_loop(model64):
    batch = make_batch(TEXTS)
    a = per_utterance_fisher_and_taylor(model64, [batch], fisher_mode="true", seed=1, progress=False)
    b = per_utterance_fisher_and_taylor(model64, [batch], fisher_mode="true", seed=1, method="vmap", progress=False)
    for k in a.fisher:
        torch.testing.assert_close(b.fisher[k], a.fisher[k], rtol=1e-7, atol=1e-14)


def test_sampled_targets_keep_the_prompt_and_teacher_force(model64):
    batch = make_batch(TEXTS)
    enc = model64.model.encoder(batch.input_features[3:4]).last_hidden_state.detach()
    inputs, labels = utterance_targets(
        model64, batch.decoder_input_ids[3], batch.labels[3], enc, fisher_mode="true",
        label_source="reference", duration_s=1.0, generator=torch.Generator().manual_seed(0),
    )
    assert inputs[:2].tolist() == [SOT, NO_TS] and labels[0].item() == IGNORE_INDEX
    assert labels[1:-1].tolist() == inputs[2:].tolist()
    assert len(labels) - 1 <= int((batch.labels[3] != IGNORE_INDEX).sum())


def test_greedy_labels_are_the_models_argmax_continuation(model64):
    batch = make_batch(TEXTS[:1])
    enc = model64.model.encoder(batch.input_features).last_hidden_state.detach()
    inputs, labels = utterance_targets(
        model64, batch.decoder_input_ids[0], batch.labels[0], enc, fisher_mode="empirical",
        label_source="greedy", duration_s=1.0, generator=None,
    )
    with torch.no_grad():
        logits = model64(input_features=batch.input_features, decoder_input_ids=inputs[None]).logits[0]
    assert logits[1:].argmax(-1).tolist() == labels[1:].tolist()


def test_tables_are_bit_identical_for_the_same_seed(tmp_path):
    model = make_tiny_whisper()
    batch = make_batch(TEXTS, dtype=torch.float32)
    t1 = sensitivity_tables(model, per_utterance_fisher_and_taylor(model, [batch], fisher_mode="true", seed=0, progress=False))
    t2 = sensitivity_tables(model, per_utterance_fisher_and_taylor(model, [batch], fisher_mode="true", seed=0, progress=False))
    pd.testing.assert_frame_equal(t1, t2, check_exact=True)
    assert list(t1.columns) == TENSOR_COLUMNS
    assert t1["tensor"].is_unique and "proj_out.weight" not in set(t1["tensor"])
    assert t1["numel"].sum() == sum(p.numel() for p in model.parameters())
    np.testing.assert_allclose(t1["fisher_per_weight"], t1["fisher"] / t1["numel"])
    roll = component_rollup(t1)
    assert roll["numel"].sum() == t1["numel"].sum()
    assert np.isclose(roll["fisher"].sum(), t1["fisher"].sum())
    one = roll[(roll["component"] == "dec_ffn") & (roll["layer"] == 1)].iloc[0]
    sel = t1[(t1["component"] == "dec_ffn") & (t1["layer"] == 1)]
    assert np.isclose(one["grad_score"], (sel["grad_score"] * sel["numel"]).sum() / sel["numel"].sum())
    assert roll["rank_fisher_per_weight"].min() == 1 and roll["rank_grad_score"].min() == 1
    plot_sensitivity_heatmap(roll, tmp_path / "heatmap.png", SCORES)
    assert (tmp_path / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_select_utterances_is_seeded_and_sorted():
    df = pd.DataFrame({"id": [f"x{i:02d}" for i in range(20)]})
    a, b = select_utterances(df, 5, 0), select_utterances(df, 5, 0)
    assert a["id"].tolist() == b["id"].tolist() == sorted(a["id"])
    assert select_utterances(df, 5, 1)["id"].tolist() != a["id"].tolist()
    assert len(select_utterances(df, 50, 0)) == 20


def test_run_sensitivity_writes_every_output(tmp_path):
    """The stage end to end: a saved random Whisper (tiny.en tokenizer) and a synthetic FLAC calibration split."""
    from safetensors.torch import load_file

    from asrprune.audio import encode_flac
    from asrprune.io import write_parquet
    from asrprune.stages.sensitivity import run_sensitivity
    from test_models import TINY_EN_VOCAB, _save_random_whisper

    model_dir = tmp_path / "model"
    model = _save_random_whisper(model_dir, TINY_EN_VOCAB)
    rng = np.random.default_rng(0)
    rows = [
        {"id": f"c{i}", "audio": encode_flac((0.1 * rng.standard_normal(16000 * (1 + i % 2))).astype(np.float32)),
         "duration_s": float(1 + i % 2), "text": t, "source": "noise", "sentence_id": f"s{i}"}
        for i, t in enumerate(["one two", "three", "four five six", "seven"])
    ]
    calib = tmp_path / "calib.parquet"
    write_parquet(pd.DataFrame(rows), calib)
    out = tmp_path / "sens"
    run_sensitivity(model_dir, calib, out, n_utts=3, batch_size=2, fisher_mode="empirical", seed=0)
    tensors = pd.read_parquet(out / "tensors.parquet")
    comps = pd.read_parquet(out / "components.parquet")
    fisher = load_file(str(out / "fisher.safetensors"))
    cal = json.loads((out / "calibration.json").read_text())
    assert list(tensors.columns) == TENSOR_COLUMNS
    assert set(fisher) == set(tensors["tensor"]) == {n for n, _ in model.named_parameters()}
    assert all(v.dtype == torch.float32 for v in fisher.values())
    np.testing.assert_allclose(
        tensors.set_index("tensor")["fisher"], [float(fisher[n].double().sum()) for n in tensors["tensor"]], rtol=1e-5
    )
    assert comps["numel"].sum() == tensors["numel"].sum()
    assert cal["n_utts"] == 3 and len(cal["ids"]) == 3 and cal["fisher_mode"] == "empirical"
    assert set(cal) >= {"n_utts", "batch_size", "fisher_mode", "label_source", "seed", "ids", "seconds", "torch_threads"}
    assert (out / "heatmap.png").stat().st_size > 1000


def test_wanda_and_the_fisher_calibrate_on_the_same_utterances(tmp_path, monkeypatch):
    """One function picks the calibration utterances: with a calibration split larger than n_utts,
    wanda's activation norms (prune stage) read exactly the utterances the Fisher used (calibration.json)."""
    from asrprune import activations
    from asrprune.audio import encode_flac
    from asrprune.io import write_parquet
    from asrprune.io import read_split
    from asrprune.models.load import generation_prompt_ids, load_model
    from asrprune.stages.sensitivity import run_sensitivity
    from test_models import TINY_EN_VOCAB, _save_random_whisper

    model_dir = tmp_path / "model"
    _save_random_whisper(model_dir, TINY_EN_VOCAB)
    rng = np.random.default_rng(1)
    rows = [
        {"id": f"c{i:02d}", "audio": encode_flac((0.1 * rng.standard_normal(8000)).astype(np.float32)),
         "duration_s": 0.5, "text": f"word {i}", "source": "noise", "sentence_id": f"s{i}"}
        for i in range(10)
    ]
    calib = tmp_path / "calib.parquet"
    write_parquet(pd.DataFrame(rows), calib)
    model, processor = load_model(model_dir)
    seen: list[str] = []
    real_norms = activations.input_activation_norms

    def spy(model, batches, names):
        batches = list(batches)
        seen.extend(i for b in batches for i in b.ids)
        return real_norms(model, batches, names)

    monkeypatch.setattr(activations, "input_activation_norms", spy)
    for seed in (0, 1):
        out = tmp_path / f"sens{seed}"
        run_sensitivity(model_dir, calib, out, n_utts=4, batch_size=2, seed=seed)
        fisher_ids = json.loads((out / "calibration.json").read_text())["ids"]
        seen.clear()
        activations.calibration_norms(model, processor, read_split(calib), ["model.decoder.layers.0.fc1.weight"],
                                      n_utts=4, batch_size=2, seed=seed, prompt_ids=generation_prompt_ids(model))
        assert sorted(seen) == sorted(fisher_ids) and len(fisher_ids) == 4, seed
        assert sorted(fisher_ids) != [f"c{i:02d}" for i in range(4)]  # not simply the first 4: the seed picks
        if seed == 0:
            first = sorted(fisher_ids)
    assert sorted(fisher_ids) != first  # another seed, another subset, for both
