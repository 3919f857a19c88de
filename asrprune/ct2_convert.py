"""Convert a CTranslate2 Whisper spec (asrprune.ct2.read_model_bin) to a Hugging Face Whisper model:
the state dict, the tokenizer, the model and generation configs, exactly."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from asrprune.components import is_multilingual
from asrprune.ct2 import CT2Model, read_model_bin

WHISPER_SPEC = "WhisperSpec"
# <|0.00|> ... <|30.00|> in steps of 0.02 s: the timestamp tokens that follow the special tokens.
N_TIMESTAMP_TOKENS = 1501
# CTranslate2's ActivationType enum value for exact (erf) GELU, the activation Whisper uses.
CT2_GELU = 3


# --------------------------------------------------------------------------------------------
# Whisper: CTranslate2 variables -> Hugging Face WhisperForConditionalGeneration state dict
# --------------------------------------------------------------------------------------------


def _count_layers(ct2: CT2Model, side: str) -> int:
    """Number of `{side}/layer_N/` blocks."""
    pat = re.compile(rf"^{side}/layer_(\d+)/")
    found = {int(m.group(1)) for name in ct2.variables if (m := pat.match(name))}
    if found != set(range(len(found))):
        raise ValueError(f"{ct2.source}: {side} layers are not numbered 0..n-1: {sorted(found)}")
    return len(found)


def _scalar(ct2: CT2Model, name: str) -> int:
    """Value of a rank-0 flag variable."""
    return int(ct2[name].item())


def _check_whisper_flags(ct2: CT2Model) -> None:
    """Refuse specs whose flags describe a model that HF's Whisper would not compute the same way."""
    if ct2.spec != WHISPER_SPEC:
        raise ValueError(f"{ct2.source}: spec is {ct2.spec!r}, expected {WHISPER_SPEC!r}")
    expected = {
        "decoder/activation": CT2_GELU,
        "decoder/alibi": 0,
        "decoder/pre_norm": 1,
        "decoder/scale_embeddings": 0,
        "decoder/start_from_zero_embedding": 0,
    }
    for name, value in expected.items():
        if name in ct2 and _scalar(ct2, name) != value:
            raise ValueError(f"{ct2.source}: {name} = {_scalar(ct2, name)}, the Whisper conversion needs {value}")
    if "encoder/activation" in ct2 and _scalar(ct2, "encoder/activation") != CT2_GELU:
        raise ValueError(f"{ct2.source}: encoder/activation is not GELU")


# Flags that only steer CTranslate2's runtime; the HF config carries their meaning.
_IGNORED_SCALARS = (
    "decoder/activation",
    "encoder/activation",
    "decoder/alibi",
    "decoder/pre_norm",
    "decoder/scale_embeddings",
    "decoder/start_from_zero_embedding",
    "decoder/alignment_heads",
    "decoder/alignment_layer",
    "decoder/num_heads",
    "encoder/num_heads",
)


def whisper_state_dict(ct2: CT2Model) -> dict[str, torch.Tensor]:
    """Map every tensor of a CTranslate2 WhisperSpec to its HF name, as contiguous float32."""
    _check_whisper_flags(ct2)
    used: set[str] = set(n for n in _IGNORED_SCALARS if n in ct2.variables)
    sd: dict[str, torch.Tensor] = {}

    def get(name: str) -> torch.Tensor:
        if name not in ct2:
            raise ValueError(f"{ct2.source}: missing variable {name}")
        used.add(ct2.aliases.get(name, name))
        return ct2[name].to(torch.float32, copy=True)

    def linear(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = get(f"{src}/weight")
        sd[f"{dst}.bias"] = get(f"{src}/bias")

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = get(f"{src}/gamma")
        sd[f"{dst}.bias"] = get(f"{src}/beta")

    def split_rows(src: str, dsts: Sequence[str]) -> None:
        # Fused projections stack q/k/v (or k/v) row-wise. The k bias is dropped: CTranslate2 stores
        # zeros there, and any constant k bias adds q.b to every score of a row, which softmax ignores.
        w, b = get(f"{src}/weight"), get(f"{src}/bias")
        n = len(dsts)
        if w.shape[0] % n or b.shape[0] != w.shape[0]:
            raise ValueError(f"{ct2.source}: {src} has shape {list(w.shape)}, not {n} stacked projections")
        for dst, wi, bi in zip(dsts, w.chunk(n), b.chunk(n)):
            sd[f"{dst}.weight"] = wi.contiguous()
            if not dst.endswith("k_proj"):
                sd[f"{dst}.bias"] = bi.contiguous()

    def self_attention(dst: str, src: str) -> None:
        att = f"{dst}.self_attn"
        split_rows(f"{src}/self_attention/linear_0", [f"{att}.q_proj", f"{att}.k_proj", f"{att}.v_proj"])
        linear(f"{att}.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")

    def ffn(dst: str, src: str) -> None:
        linear(f"{dst}.fc1", f"{src}/linear_0")
        linear(f"{dst}.fc2", f"{src}/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/layer_norm")

    enc, dec = "model.encoder", "model.decoder"
    linear(f"{enc}.conv1", "encoder/conv1")
    linear(f"{enc}.conv2", "encoder/conv2")
    sd[f"{enc}.embed_positions.weight"] = get("encoder/position_encodings/encodings")
    for i in range(_count_layers(ct2, "encoder")):
        src, dst = f"encoder/layer_{i}", f"{enc}.layers.{i}"
        self_attention(dst, src)
        ffn(dst, f"{src}/ffn")
    norm(f"{enc}.layer_norm", "encoder/layer_norm")

    sd[f"{dec}.embed_tokens.weight"] = get("decoder/embeddings/weight")
    sd[f"{dec}.embed_positions.weight"] = get("decoder/position_encodings/encodings")
    for i in range(_count_layers(ct2, "decoder")):
        src, dst = f"decoder/layer_{i}", f"{dec}.layers.{i}"
        self_attention(dst, src)
        # Cross-attention: queries from the decoder (linear_0), fused k/v of the encoder output (linear_1).
        xatt = f"{dst}.encoder_attn"
        linear(f"{xatt}.q_proj", f"{src}/attention/linear_0")
        split_rows(f"{src}/attention/linear_1", [f"{xatt}.k_proj", f"{xatt}.v_proj"])
        linear(f"{xatt}.out_proj", f"{src}/attention/linear_2")
        norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        ffn(dst, f"{src}/ffn")
    norm(f"{dec}.layer_norm", "decoder/layer_norm")

    # The output projection must be the token embedding (HF ties them); CT2 stores it as an alias.
    proj = "decoder/projection/weight"
    if proj in ct2.variables and not torch.equal(ct2[proj], ct2["decoder/embeddings/weight"]):
        raise ValueError(f"{ct2.source}: {proj} differs from the embeddings; HF Whisper ties them")
    used.add(proj)
    leftover = sorted(set(ct2.variables) - used)
    if leftover:
        raise ValueError(f"{ct2.source}: variables the Whisper mapping does not know: {leftover}")
    return sd


# --------------------------------------------------------------------------------------------
# Tokenizer, configs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WhisperTokens:
    """Special token ids and sizes read from a Whisper `tokenizer.json`."""

    eos: int
    sot: int
    no_timestamps: int
    prev_sot: int | None
    transcribe: int | None
    translate: int | None
    lang_to_id: dict[str, int]
    size: int
    has_timestamps: bool


def read_tokens(tokenizer_json: str | Path) -> WhisperTokens:
    """Read the special token ids of a Whisper `tokenizer.json` (never hard-coded: tiny.en and base differ)."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    data = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    ids: dict[str, int] = dict(data["model"]["vocab"])
    ids.update({t["content"]: t["id"] for t in data.get("added_tokens", [])})

    def need(token: str) -> int:
        if token not in ids:
            raise ValueError(f"{tokenizer_json}: no {token} token; is this a Whisper tokenizer?")
        return ids[token]

    langs = {f"<|{code}|>": ids[f"<|{code}|>"] for code in LANGUAGES if f"<|{code}|>" in ids}
    return WhisperTokens(
        eos=need("<|endoftext|>"),
        sot=need("<|startoftranscript|>"),
        no_timestamps=need("<|notimestamps|>"),
        prev_sot=ids.get("<|startofprev|>"),
        transcribe=ids.get("<|transcribe|>"),
        translate=ids.get("<|translate|>"),
        lang_to_id=dict(sorted(langs.items(), key=lambda kv: kv[1])),
        size=max(ids.values()) + 1,
        has_timestamps="<|0.00|>" in ids,
    )


def check_vocab_size(n_embeddings: int, n_tokens: int, has_timestamps: bool, where: str) -> None:
    """Raise if a tokenizer of `n_tokens` tokens and an embedding of `n_embeddings` rows disagree.

    A tokenizer without the timestamp tokens implies N_TIMESTAMP_TOKENS more model tokens.
    """
    implied = n_tokens if has_timestamps else n_tokens + N_TIMESTAMP_TOKENS
    if implied != n_embeddings:
        stamps = "" if has_timestamps else f" + {N_TIMESTAMP_TOKENS} timestamp tokens"
        raise ValueError(
            f"{where}: vocabulary size mismatch: the tokenizer implies {implied} tokens ({n_tokens}{stamps}), "
            f"the model's token embeddings have {n_embeddings} rows"
        )


def _special_tokens(tokens: WhisperTokens, ct2_config: dict[str, Any]) -> dict[str, Any]:
    """The token ids the model and generation configs share. HF's own Whisper configs use
    <|endoftext|> as bos, eos and pad."""
    return dict(
        bos_token_id=tokens.eos,
        eos_token_id=tokens.eos,
        pad_token_id=tokens.eos,
        decoder_start_token_id=tokens.sot,
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
    )


def whisper_config(sd: dict[str, torch.Tensor], ct2: CT2Model, ct2_config: dict[str, Any], tokens: WhisperTokens):
    """Build the `WhisperConfig` from tensor shapes, CT2 flags and the tokenizer's special ids."""
    from transformers import WhisperConfig

    vocab, d_model = sd["model.decoder.embed_tokens.weight"].shape
    return WhisperConfig(
        vocab_size=vocab,
        num_mel_bins=sd["model.encoder.conv1.weight"].shape[1],
        d_model=d_model,
        encoder_layers=_count_layers(ct2, "encoder"),
        decoder_layers=_count_layers(ct2, "decoder"),
        encoder_attention_heads=_scalar(ct2, "encoder/num_heads"),
        decoder_attention_heads=_scalar(ct2, "decoder/num_heads"),
        encoder_ffn_dim=sd["model.encoder.layers.0.fc1.weight"].shape[0],
        decoder_ffn_dim=sd["model.decoder.layers.0.fc1.weight"].shape[0],
        max_source_positions=sd["model.encoder.embed_positions.weight"].shape[0],
        max_target_positions=sd["model.decoder.embed_positions.weight"].shape[0],
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=True,
        **_special_tokens(tokens, ct2_config),
    )


def whisper_generation_config(config, ct2_config: dict[str, Any], tokens: WhisperTokens):
    """Build the generation config the transformers-5 way: language/task ids, no `forced_decoder_ids`.

    `forced_decoder_ids` is deprecated; `generate` builds the prompt itself from
    decoder_start_token_id (+ lang_to_id[language] + task_to_id[task] when multilingual) +
    no_timestamps_token_id. `lang_to_id` only goes into multilingual configs: its mere presence
    makes `generate` run language detection.
    """
    from transformers import GenerationConfig

    multilingual = is_multilingual(config.vocab_size)
    kwargs: dict[str, Any] = dict(
        **_special_tokens(tokens, ct2_config),
        max_length=config.max_target_positions,
        alignment_heads=[list(h) for h in ct2_config.get("alignment_heads", [])],
        no_timestamps_token_id=tokens.no_timestamps,
        is_multilingual=multilingual,
        return_timestamps=False,
        max_initial_timestamp_index=50,
    )
    if tokens.prev_sot is not None:
        kwargs["prev_sot_token_id"] = tokens.prev_sot
    if multilingual:
        if tokens.transcribe is None or tokens.translate is None or not tokens.lang_to_id:
            raise ValueError("multilingual Whisper vocabulary, but the tokenizer lacks language/task tokens")
        ct2_langs = ct2_config.get("lang_ids")
        if ct2_langs is not None and sorted(ct2_langs) != sorted(tokens.lang_to_id.values()):
            raise ValueError("the tokenizer's language tokens differ from the CT2 config's lang_ids")
        kwargs["lang_to_id"] = dict(tokens.lang_to_id)
        kwargs["task_to_id"] = {"translate": tokens.translate, "transcribe": tokens.transcribe}
    return GenerationConfig(**kwargs)


def complete_tokenizer(tok):
    """Add the timestamp tokens and a pad token where a Whisper tokenizer lacks them; return it."""
    from transformers import AddedToken

    if "<|0.00|>" not in tok.get_vocab():
        # As on the hub's current Whisper tokenizers: timestamps are added, non-special tokens that
        # `decode` strips by pattern, so len(tokenizer) equals the model vocabulary.
        stamps = [f"<|{i * 0.02:.2f}|>" for i in range(N_TIMESTAMP_TOKENS)]
        tok.add_tokens([AddedToken(s, lstrip=False, rstrip=False, normalized=False, special=False) for s in stamps])
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # batching (padding) needs one; Whisper's tokenizer has none
    return tok


def build_tokenizer(tokenizer_json: str | Path):
    """A `WhisperTokenizer` from a shipped `tokenizer.json`, offline, completed by `complete_tokenizer`."""
    import shutil

    from transformers import WhisperTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(tokenizer_json, Path(tmp) / "tokenizer.json")
        tok = WhisperTokenizer.from_pretrained(tmp)
    return complete_tokenizer(tok)


def build_feature_extractor(n_mels: int):
    """The standard Whisper log-mel front end (16 kHz, 30 s windows) with `n_mels` bins."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=n_mels)


@dataclass
class ConvertedWhisper:
    """A converted model with everything needed to save a standalone HF directory."""

    model: Any
    tokenizer: Any
    feature_extractor: Any
    ct2_format: dict[str, Any]  # binary version, spec, revision, weight dtypes (not the CT2Model: it pins the file buffer)


def convert_whisper(
    model_bin: str | Path | Sequence[str | Path], config_json: str | Path, tokenizer_json: str | Path
) -> ConvertedWhisper:
    """Convert a CTranslate2 Whisper (model.bin parts, config.json, tokenizer.json) to an HF float32 model."""
    from transformers import WhisperForConditionalGeneration

    ct2 = read_model_bin(model_bin)
    ct2_config = json.loads(Path(config_json).read_text(encoding="utf-8"))
    tokens = read_tokens(tokenizer_json)
    if "decoder/embeddings/weight" not in ct2:
        raise ValueError(f"{ct2.source}: no decoder/embeddings/weight; not a Whisper model")
    # Checked before the (slower) tensor conversion so a mismatched pair fails fast.
    n_embeddings = ct2["decoder/embeddings/weight"].shape[0]
    check_vocab_size(n_embeddings, tokens.size, tokens.has_timestamps, f"{ct2.source} vs {tokenizer_json}")
    sd = whisper_state_dict(ct2)
    config = whisper_config(sd, ct2, ct2_config, tokens)
    model = WhisperForConditionalGeneration(config)
    sd["proj_out.weight"] = sd["model.decoder.embed_tokens.weight"]
    model.load_state_dict(sd, strict=True)
    model.tie_weights()
    model.generation_config = whisper_generation_config(config, ct2_config, tokens)
    model.eval()
    tokenizer = build_tokenizer(tokenizer_json)
    if len(tokenizer) != config.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, the model {config.vocab_size}")
    fmt = {
        "binary_version": ct2.binary_version,
        "spec": ct2.spec,
        "revision": ct2.revision,
        # how the file stores its weight matrices (the conversion upcasts them to float32 exactly)
        "weight_dtypes": sorted({str(v.dtype).removeprefix("torch.") for v in ct2.variables.values() if v.dim() >= 2}),
    }
    return ConvertedWhisper(model, tokenizer, build_feature_extractor(config.num_mel_bins), fmt)
