"""The component registry: every Whisper tensor has one component; targets resolve by relative depth."""

import pytest

from asrprune.components import COMPONENTS, classify, layers_in_range, parse_target, select_tensors


def test_every_tensor_of_a_whisper_has_a_known_component(tiny_whisper):
    infos = [classify(n) for n, _ in tiny_whisper.named_parameters()]
    assert {i.component for i in infos} == set(COMPONENTS)
    by_name = {i.name: i for i in infos}
    assert by_name["model.decoder.layers.1.self_attn.k_proj.weight"].component == "dec_self_attn"
    assert by_name["model.decoder.layers.1.self_attn.k_proj.weight"].layer == 1
    assert by_name["model.decoder.layers.0.encoder_attn.q_proj.weight"].component == "dec_cross_attn"
    assert by_name["model.encoder.layers.0.fc2.weight"].component == "enc_ffn"
    assert by_name["model.encoder.layers.0.fc2.bias"].component == "bias"
    assert by_name["model.encoder.layers.0.final_layer_norm.bias"].component == "layernorm"
    assert by_name["model.encoder.conv2.weight"].component == "conv"
    assert by_name["model.decoder.embed_tokens.weight"].component == "embeddings"


@pytest.mark.parametrize(
    "rng,n,expected",
    [
        ("last_third", 12, {8, 9, 10, 11}),  # whisper-small: the paper's encoder layers 9-12
        ("last_third", 4, {3}),
        ("last_third", 6, {4, 5}),
        ("first_half", 4, {0, 1}),
        ("l9-12", 12, {8, 9, 10, 11}),
        ("l2", 4, {1}),
        (None, 3, {0, 1, 2}),
    ],
)
def test_layer_ranges_are_relative_to_depth(rng, n, expected):
    assert layers_in_range(rng, n) == expected


def test_relative_thirds_partition_every_depth():
    for n in range(1, 33):
        parts = [layers_in_range(r, n) for r in ("first_third", "middle_third", "last_third")]
        assert set().union(*parts) == set(range(n))
        assert sum(len(p) for p in parts) == n


def test_targets_select_only_their_matrices(tiny_whisper):
    names = [n for n, _ in tiny_whisper.named_parameters()]
    sel = select_tensors(names, "dec_self_attn", {"encoder": 2, "decoder": 2})
    assert len(sel) == 8 and all(".self_attn." in n and n.endswith("weight") and "decoder" in n for n in sel)
    enc_late = select_tensors(names, "enc.last_half", {"encoder": 2, "decoder": 2})
    assert enc_late and all(n.startswith("model.encoder.layers.1.") for n in enc_late)
    everything = select_tensors(names, "all", {"encoder": 2, "decoder": 2})
    assert not any("embed" in n or "layer_norm" in n or n.endswith(".bias") for n in everything)


@pytest.mark.parametrize("bad", ["dec_selfattn", "enc_ffn.last_fifth", "Enc_ffn", "enc_ffn.l0-3x"])
def test_unknown_targets_are_named_in_the_error(bad):
    with pytest.raises(ValueError, match="unknown"):
        parse_target(bad)


def test_explicit_range_beyond_depth_is_refused():
    with pytest.raises(ValueError, match="outside 1..4"):
        layers_in_range("l9-12", 4)


def test_named_tensor_targets_select_the_token_embedding_and_every_bias():
    from conftest import make_tiny_whisper

    names = [n for n, _ in make_tiny_whisper().named_parameters()]
    layers = {"encoder": 2, "decoder": 2}
    assert select_tensors(names, "token_embedding", layers) == ["model.decoder.embed_tokens.weight"]
    biases = select_tensors(names, "all_biases", layers)
    assert biases == [n for n in names if n.endswith(".bias")]
    assert "model.encoder.layer_norm.bias" in biases and "model.encoder.conv1.bias" in biases  # the authors' bias.py
    assert "model.encoder.layers.0.self_attn_layer_norm.weight" not in biases
    with pytest.raises(ValueError, match="takes no layer range"):
        select_tensors(names, "all_biases.last_third", layers)
