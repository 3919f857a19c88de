"""Whisper's components: which parameter tensors a target such as `dec_self_attn` or `enc.last_third` names.

A tensor's *component* is one of COMPONENTS. Weight matrices belong to their block
(`enc_self_attn`, `enc_ffn`, `dec_self_attn`, `dec_cross_attn`, `dec_ffn`, `conv`); every
LayerNorm parameter belongs to `layernorm`; every other bias vector belongs to `bias`; token and
position embeddings belong to `embeddings` (the output projection is tied to the token embedding,
so pruning `embeddings` prunes the output projection too).

A *target* is `COMPONENT`, `enc`, `dec`, `all`, `token_embedding` (the token embedding alone, tied
to the output projection) or `all_biases` (every bias, LayerNorm's too), the first four optionally followed by `.LAYERS`, where LAYERS is
a depth-relative range (`first_half`, `last_half`, `first_third`, `middle_third`, `last_third`,
`first_quarter`, `last_quarter`) or explicit 1-based inclusive layers `l9-12` / `l3`. Relative ranges
assign layer i of n to a fraction by its centre (i + 0.5) / n, so `last_third` is layers 9–12 of
whisper-small's 12, layer 4 of tiny's 4 and layers 5–6 of base's 6. `enc`, `dec` and `all` mean
every prunable weight matrix (attention, FFN, and for `enc`/`all` the convolutions) on that side.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MATRIX_COMPONENTS: tuple[str, ...] = (
    "enc_self_attn",
    "enc_ffn",
    "dec_self_attn",
    "dec_cross_attn",
    "dec_ffn",
    "conv",
)
COMPONENTS: tuple[str, ...] = MATRIX_COMPONENTS + ("layernorm", "bias", "embeddings")
GROUPS: dict[str, tuple[str, ...]] = {
    "all": MATRIX_COMPONENTS,
    "enc": ("enc_self_attn", "enc_ffn", "conv"),
    "dec": ("dec_self_attn", "dec_cross_attn", "dec_ffn"),
}
# Targets that name particular tensors rather than a component. `token_embedding`: the token
# embedding alone (the authors' schedule prunes it at 25 % and leaves the position embeddings alone;
# the output projection is tied to it, so `named_parameters` lists it once, and an untied `proj_out`
# goes with it). `all_biases`: every bias vector, LayerNorm betas and convolution biases included,
# which is what the authors' bias sweep prunes (their `bias.py`: every module's `bias`); the `bias`
# component leaves LayerNorm to `layernorm`.
NAMED_TENSORS: dict[str, Callable[[str], bool]] = {
    "token_embedding": lambda name: name in ("model.decoder.embed_tokens.weight", "proj_out.weight"),
    "all_biases": lambda name: name.endswith(".bias"),
}
RELATIVE_RANGES: dict[str, tuple[float, float]] = {
    "first_half": (0.0, 1 / 2),
    "last_half": (1 / 2, 1.0),
    "first_third": (0.0, 1 / 3),
    "middle_third": (1 / 3, 2 / 3),
    "last_third": (2 / 3, 1.0),
    "first_quarter": (0.0, 1 / 4),
    "last_quarter": (3 / 4, 1.0),
}
TARGET_RE = re.compile(r"^(?P<base>[a-z_]+)(?:\.(?P<layers>[a-z_]+|l\d+(?:-\d+)?))?$")
_LAYER_RE = re.compile(r"^model\.(?P<side>encoder|decoder)\.layers\.(?P<layer>\d+)\.(?P<rest>.+)$")


@dataclass(frozen=True)
class TensorInfo:
    """Where one parameter tensor sits in the model."""

    name: str
    component: str
    side: str  # "encoder", "decoder" or "shared"
    layer: int  # 0-based block index, -1 outside the blocks
    is_matrix: bool  # a weight matrix (or conv kernel) that magnitude pruning ranks


def classify(name: str) -> TensorInfo:
    """Return the component, side and layer of a `WhisperForConditionalGeneration` parameter name."""
    if name == "proj_out.weight":
        return TensorInfo(name, "embeddings", "decoder", -1, False)
    m = _LAYER_RE.match(name)
    if m:
        side, layer, rest = m["side"], int(m["layer"]), m["rest"]
        prefix = "enc" if side == "encoder" else "dec"
        if "layer_norm" in rest:
            return TensorInfo(name, "layernorm", side, layer, False)
        if rest.endswith(".bias"):
            return TensorInfo(name, "bias", side, layer, False)
        if rest.startswith("self_attn."):
            return TensorInfo(name, f"{prefix}_self_attn", side, layer, True)
        if rest.startswith("encoder_attn."):
            return TensorInfo(name, "dec_cross_attn", side, layer, True)
        if rest.startswith(("fc1.", "fc2.")):
            return TensorInfo(name, f"{prefix}_ffn", side, layer, True)
        raise ValueError(f"unrecognised Whisper block parameter {name!r}")
    side = "encoder" if name.startswith("model.encoder.") else "decoder" if name.startswith("model.decoder.") else "shared"
    if "layer_norm" in name:
        return TensorInfo(name, "layernorm", side, -1, False)
    if ".conv" in name:
        if name.endswith(".bias"):
            return TensorInfo(name, "bias", side, -1, False)
        return TensorInfo(name, "conv", side, -1, True)
    if "embed_" in name:
        return TensorInfo(name, "embeddings", side, -1, False)
    raise ValueError(f"unrecognised Whisper parameter {name!r}")


def parse_target(target: str) -> tuple[str, str | None]:
    """Split a target into (component or group, layer range or None), checking both names."""
    m = TARGET_RE.match(target)
    if not m or (m["base"] not in COMPONENTS and m["base"] not in GROUPS and m["base"] not in NAMED_TENSORS):
        raise ValueError(
            f"unknown pruning target {target!r}: expected one of "
            f"{', '.join(COMPONENTS + tuple(GROUPS) + tuple(NAMED_TENSORS))}, "
            f"optionally followed by '.RANGE' with RANGE one of {', '.join(RELATIVE_RANGES)} or 'l<first>-<last>'"
        )
    layers = m["layers"]
    if layers is not None and layers not in RELATIVE_RANGES and not re.match(r"^l\d+(-\d+)?$", layers):
        raise ValueError(
            f"unknown layer range {layers!r} in target {target!r}: expected one of "
            f"{', '.join(RELATIVE_RANGES)} or 'l<first>-<last>' (1-based, inclusive)"
        )
    if layers is not None and (r := re.match(r"^l(\d+)-(\d+)$", layers)) and int(r[1]) > int(r[2]):
        raise ValueError(
            f"layer range {layers!r} in target {target!r} is reversed: expected 'l<first>-<last>' with "
            f"first <= last (1-based, inclusive), e.g. 'l{r[2]}-{r[1]}'"
        )
    if layers is not None and (r := re.match(r"^l(\d+)", layers)) and int(r[1]) < 1:
        raise ValueError(f"layer range {layers!r} in target {target!r}: layers are numbered from 1")
    return m["base"], layers


def layers_in_range(layer_range: str | None, n_layers: int) -> set[int]:
    """0-based layer indices that a range names in a stack of `n_layers` blocks."""
    if layer_range is None:
        return set(range(n_layers))
    if layer_range in RELATIVE_RANGES:
        lo, hi = RELATIVE_RANGES[layer_range]
        return {i for i in range(n_layers) if lo <= (i + 0.5) / n_layers < hi}
    first, _, last = layer_range[1:].partition("-")
    first_i, last_i = int(first), int(last or first)
    if not 1 <= first_i <= last_i <= n_layers:
        raise ValueError(
            f"layer range {layer_range!r} is outside 1..{n_layers}: this model has {n_layers} layers per side"
        )
    return set(range(first_i - 1, last_i))


def select_tensors(names: list[str], target: str, n_layers: dict[str, int], allow_empty: bool = False) -> list[str]:
    """Names of the tensors a target prunes, in model order.

    `n_layers` maps "encoder"/"decoder" to the block count. Layer-restricted targets keep only
    tensors inside the blocks (the convolutions have no layer, so `enc.last_third` excludes them).
    """
    base, layer_range = parse_target(target)
    if base in NAMED_TENSORS:
        if layer_range is not None:
            raise ValueError(f"target {target!r}: {base!r} names whole tensors and takes no layer range")
        chosen = [n for n in names if NAMED_TENSORS[base](n)]
        if not chosen and not allow_empty:
            raise ValueError(f"target {target!r} selects no tensor of this model")
        return chosen
    components = GROUPS.get(base, (base,))
    chosen = []
    for name in names:
        info = classify(name)
        if info.component not in components:
            continue
        if layer_range is not None:
            if info.layer < 0 or info.layer not in layers_in_range(layer_range, n_layers[info.side]):
                continue
        chosen.append(name)
    if not chosen and not allow_empty:
        raise ValueError(f"target {target!r} selects no tensor of this model")
    return chosen


def n_layers(model: Any) -> dict[str, int]:
    """Blocks per side of a Whisper model, as `select_tensors` wants them."""
    cfg = model.config
    return {"encoder": cfg.encoder_layers, "decoder": cfg.decoder_layers}


def target_tensors(model: Any, target: str, allow_empty: bool = False) -> list[str]:
    """Names of the tensors a target selects in this model, in model order (tied tensors once)."""
    return select_tensors([n for n, _ in model.named_parameters()], target, n_layers(model), allow_empty)


# OpenAI's own rule (whisper/model.py: `is_multilingual = n_vocab >= 51865`).
MULTILINGUAL_MIN_VOCAB = 51865


def is_multilingual(vocab_size: int) -> bool:
    """Whether a Whisper vocabulary is the multilingual one."""
    return vocab_size >= MULTILINGUAL_MIN_VOCAB


def model_is_multilingual(model: Any) -> bool:
    """Whether a Whisper checkpoint is multilingual (generation config, else OpenAI's vocabulary rule)."""
    flag = getattr(model.generation_config, "is_multilingual", None)
    return bool(flag) if flag is not None else is_multilingual(model.config.vocab_size)


def whisper_parameter_names(encoder_layers: int, decoder_layers: int) -> list[str]:
    """The parameter names of a Whisper of this depth (what select_tensors ranks), in model order."""
    attn = [f"{p}_proj.{w}" for p in ("k", "v", "q", "out") for w in ("weight", "bias") if (p, w) != ("k", "bias")]
    ffn = [f"{fc}.{w}" for fc in ("fc1", "fc2") for w in ("weight", "bias")]
    norm = ["weight", "bias"]
    names = [f"model.encoder.conv{k}.{w}" for k in (1, 2) for w in ("weight", "bias")]
    names.append("model.encoder.embed_positions.weight")
    for i in range(encoder_layers):
        block = f"model.encoder.layers.{i}"
        names += [f"{block}.self_attn.{a}" for a in attn] + [f"{block}.self_attn_layer_norm.{w}" for w in norm]
        names += [f"{block}.{f}" for f in ffn] + [f"{block}.final_layer_norm.{w}" for w in norm]
    names += [f"model.encoder.layer_norm.{w}" for w in norm]
    names += ["model.decoder.embed_tokens.weight", "model.decoder.embed_positions.weight"]
    for i in range(decoder_layers):
        block = f"model.decoder.layers.{i}"
        names += [f"{block}.self_attn.{a}" for a in attn] + [f"{block}.self_attn_layer_norm.{w}" for w in norm]
        names += [f"{block}.encoder_attn.{a}" for a in attn] + [f"{block}.encoder_attn_layer_norm.{w}" for w in norm]
        names += [f"{block}.{f}" for f in ffn] + [f"{block}.final_layer_norm.{w}" for w in norm]
    names += [f"model.decoder.layer_norm.{w}" for w in norm]
    return names
