"""Batched greedy (or beam) decoding of a dataset with one model variant, one row per utterance.

Two decoder backends give the same tokens (``tests/test_decode.py`` checks it token for token on the
real tiny.en):

- ``generate``: ``model.generate`` on the batch's log-Mel features, the reference;
- ``fast`` (default): our own batched greedy loop over the decoder's modules with a key/value cache.
  It runs the very same tensor operations as ``generate`` in the same order and with the same batch
  shapes, applies the same ``suppress_tokens`` and ``begin_suppress_tokens`` (-inf), and skips what
  costs time without changing a token: the per-step mask construction, cache bookkeeping,
  logits-processor and stopping-criteria objects, steps after every row has ended or reached its
  own token limit, and the cross-attention of rows that have ended (reading 1500 keys and values
  per layer is most of a step's memory traffic; attention is computed row by row, so leaving rows
  out changes no other row's bits). Ended rows stay in every matrix product: CPU GEMM kernels pick
  their blocking by the number of rows, so a smaller batch changes the last bits of the others
  (measured: fc1/fc2 outputs differ between 8 rows and 1-3 or 16+ rows), and merging batches to
  amortize the weights costs more in cross-attention than it saves. One deliberate difference: on a
  CPU the vocabulary projection multiplies by a transposed copy of the (tied) embedding, made once
  per job. F.linear hands MKL the 80 MB matrix transposed and it repacks it on every step; the
  copy makes a step's largest product 2-2.5x faster. Its logits can differ from F.linear's in the
  last bit (measured: for 2-3 rows with 2 threads, 2-15 rows with 1), which can move an argmax
  only when the two best logits are within a rounding step of each other; the tests and
  ``bench/bench_decode.py`` compare the transcripts with ``generate``'s. Beam search, and
  generation configs that would add other logits processors, fall back to ``generate``.

The encoder side is independent of the backend: it runs in full, or resumes from states that
``asrprune.encoder_cache`` keeps on disk for variants that leave a prefix of the encoder untouched.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from asrprune.batches import log_mel
from asrprune.encoder_cache import (
    DEFAULT_CAP_MB,
    EncoderCache,
    EntryReader,
    EntryWriter,
    cache_key,
    entry_bytes,
    feature_settings,
    numeric_context,
)

log = logging.getLogger(__name__)

DECODE_COLUMNS = [
    "id",
    "reference",
    "hypothesis",
    "duration_s",
    "n_tokens",
    "token_limit",
    "hit_token_limit",
    "decode_s",
    "encoder_cached",
    "language",
]
BACKENDS = ("fast", "generate")
LANGUAGES = ("en", "auto")
BATCH_ORDER = "duration desc, id asc"  # part of the encoder-cache key: batches must be reproduced exactly


@dataclass(frozen=True)
class DecodeSettings:
    """How hypotheses are produced; recorded with every table row."""

    batch_size: int = 8
    num_beams: int = 1
    device: str = "auto"
    gpu_dtype: str = "bfloat16"
    max_tokens_per_second: float = 6.0
    max_tokens_margin: int = 10
    backend: str = "fast"
    encoder_cache: bool = True
    encoder_cache_mb: float = DEFAULT_CAP_MB
    # en: a multilingual model is told <|en|><|transcribe|>; auto: it detects the language of each
    # utterance and transcribes (what the authors' `generate` call did with whisper-small's hub
    # generation config, forced_decoder_ids [[1, None], [2, <|transcribe|>]]). English-only models
    # have no language token either way.
    language: str = "en"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"decoding.backend = {self.backend!r}: expected one of {list(BACKENDS)}")
        if self.language not in LANGUAGES:
            raise ValueError(f"decoding.language = {self.language!r}: expected one of {list(LANGUAGES)}")

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "DecodeSettings":
        return cls(**{k: v for k, v in cfg.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class CacheSpec:
    """What decode_frame needs to use the encoder cache for one variant and one dataset."""

    cache: EncoderCache
    weights_sha256: str  # the base model's
    dataset_sha256: str
    resume_layer: int  # asrprune.encoder_cache.resume_boundary of the variant's mask set
    # Earlier boundaries other variants of the grid resume from: a job that computes the encoder up to
    # its own boundary stores the states it passes at these too (asrprune.plan.grid_targets).
    also_store: tuple[int, ...] = ()
    # sha256 of the base model's config.json (asrprune.pipeline passes the file's, from its manifest);
    # None: the sha256 of the loaded config serialized as save_pretrained writes it.
    config_sha256: str | None = None


def resolve_device(setting: str) -> torch.device:
    """`auto` picks CUDA when present, else CPU; asking for CUDA without one is an error."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("decoding.device = 'cuda' but no CUDA device is visible: expected a GPU or device 'auto'/'cpu'")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def token_limit(duration_s: float, settings: DecodeSettings, ceiling: int) -> int:
    """New-token budget that scales with the audio: speech runs at ~3-4 tokens/s, so a hypothesis
    far longer than that is a runaway loop, and stopping it early saves time without changing
    any hypothesis that ends normally."""
    return min(ceiling, math.ceil(duration_s * settings.max_tokens_per_second) + settings.max_tokens_margin)


# ------------------------------------------------------------------------------------------------
# Batches


def batch_chunks(df: pd.DataFrame, batch_size: int) -> list[pd.DataFrame]:
    """The decoding batches: longest first (fewer padded decoder steps), ties by id; as iter_batches."""
    rows = df.sort_values(["duration_s", "id"], ascending=[False, True], kind="stable")
    return [rows.iloc[s : s + batch_size] for s in range(0, len(rows), batch_size)]


def chunk_features(chunk: pd.DataFrame, processor: Any) -> torch.Tensor:
    """Log-Mel features of one batch, exactly as asrprune.batches.iter_batches computes them."""
    from asrprune.audio import decode_audio

    audios = [decode_audio(a, name=i) for a, i in zip(chunk["audio"], chunk["id"])]
    return log_mel(processor.feature_extractor, audios)


# ------------------------------------------------------------------------------------------------
# Encoder, split at a block boundary


def encoder_stem(model: Any, features: torch.Tensor) -> torch.Tensor:
    """Hidden states entering encoder block 0: convolutions, GELU, positions (as WhisperEncoder.forward)."""
    enc = model.model.encoder
    x = F.gelu(enc.conv1(features))
    x = F.gelu(enc.conv2(x))
    x = x.permute(0, 2, 1)
    positions = torch.arange(enc.embed_positions.num_embeddings, device=x.device)
    return x + enc.embed_positions(positions)


def encoder_blocks(model: Any, hidden: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Hidden states entering block `stop` from those entering block `start`."""
    for layer in model.model.encoder.layers[start:stop]:
        hidden = layer(hidden, None)
    return hidden


def encoder_prefix(model: Any, features: torch.Tensor, k: int) -> torch.Tensor:
    """Hidden states entering encoder block `k` (the operations of WhisperEncoder.forward, in order)."""
    return encoder_blocks(model, encoder_stem(model, features), 0, k)


def encoder_resume(model: Any, hidden: torch.Tensor, k: int) -> torch.Tensor:
    """The encoder's output from the hidden states entering block `k`: blocks k..L-1, then layer_norm."""
    enc = model.model.encoder
    return enc.layer_norm(encoder_blocks(model, hidden, k, len(enc.layers)))


def encode(model: Any, features: torch.Tensor) -> torch.Tensor:
    """The whole encoder; bit-identical to ``model.model.encoder(features).last_hidden_state``."""
    n = len(model.model.encoder.layers)
    return encoder_resume(model, encoder_prefix(model, features, n), n)


# ------------------------------------------------------------------------------------------------
# Decoder: the fast greedy loop


# Generation settings that would make `generate` add a logits processor the fast loop does not have,
# with the values that leave them off.
_NEUTRAL = {
    "repetition_penalty": (None, 1.0),
    "encoder_repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "sequence_bias": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "forced_decoder_ids": (None,),
    "exponential_decay_length_penalty": (None,),
    "no_speech_threshold": (None,),
    "logit_threshold": (None,),
}


def fast_unsupported(model: Any, settings: DecodeSettings, generate_kwargs: dict[str, Any] | None = None) -> str | None:
    """Why the fast loop cannot reproduce `generate` for this model and these settings, or None."""
    if settings.num_beams != 1:
        return f"num_beams = {settings.num_beams} (the fast loop is greedy)"
    if generate_kwargs:
        return f"extra generate arguments {sorted(generate_kwargs)}"
    attn = getattr(model.config, "_attn_implementation", None)
    if attn != "sdpa":
        return f"attention implementation {attn!r} (the fast loop reproduces 'sdpa')"
    gc = model.generation_config
    for name, neutral in _NEUTRAL.items():
        value = getattr(gc, name, None)
        if value not in neutral and not (isinstance(value, (list, tuple)) and len(value) == 0):
            return f"generation_config.{name} = {value!r}"
    return None


@dataclass(frozen=True)
class LoopConstants:
    """What every batch of a job shares: the suppress-token masks and the vocabulary projection."""

    always: torch.Tensor  # bool [vocab]: suppressed at every step
    first: torch.Tensor  # bool [vocab]: suppressed at the first generated step
    vocab_t: torch.Tensor | None  # proj_out.weight transposed and contiguous (CPU), None: F.linear

    def logits(self, model: Any, last: torch.Tensor) -> torch.Tensor:
        """Float logits [rows, vocab] of the decoder's final hidden states [rows, d_model]."""
        out = model.proj_out(last) if self.vocab_t is None else torch.mm(last, self.vocab_t)
        return out.float()


def loop_constants(model: Any, device: torch.device) -> LoopConstants:
    """The job-wide constants of the fast loop (the transposed copy costs one pass over the embedding)."""
    always, first = suppress_masks(model, device)
    w = model.proj_out.weight
    vocab_t = w.detach().t().contiguous() if device.type == "cpu" and model.proj_out.bias is None else None
    return LoopConstants(always, first, vocab_t)


def suppress_masks(model: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean vocabulary masks: tokens suppressed at every step, and at the first generated step."""
    gc = model.generation_config
    vocab = model.config.vocab_size
    always = torch.zeros(vocab, dtype=torch.bool, device=device)
    if gc.suppress_tokens:
        always[list(gc.suppress_tokens)] = True
    first = always.clone()
    if gc.begin_suppress_tokens:
        first[list(gc.begin_suppress_tokens)] = True
    return always, first


@torch.inference_mode()
def greedy_decode(
    model: Any,
    encoder_hidden: torch.Tensor,
    prompt_ids: list[int] | list[list[int]],
    limits: list[int],
    constants: LoopConstants | None = None,
    compact: bool | None = None,
) -> list[list[int]]:
    """Greedy tokens after the prompt for each row: up to its eos (included) or its token limit.

    `prompt_ids` is one prompt for every row, or one per row (all of the same length: the detected
    language differs by row under `decoding.language: auto`).

    Mirrors `generate`'s greedy search over WhisperForConditionalGeneration op for op (see the module
    docstring), so the tokens are those `generate(..., max_new_tokens=max(limits))` gives, truncated
    at each row's own limit. With `compact` (default: on a CPU), rows that have ended are left out
    of cross-attention: the tokens are the same (checked on CPU kernels, which compute attention row
    by row; GPU attention kernels may split the work by batch size, so there it stays off).
    """
    dec = model.model.decoder
    layers = dec.layers
    device = encoder_hidden.device
    compact = device.type == "cpu" if compact is None else compact
    batch = encoder_hidden.shape[0]
    eos = int(model.generation_config.eos_token_id)
    pad = model.generation_config.pad_token_id
    pad = eos if pad is None else int(pad)
    constants = constants if constants is not None else loop_constants(model, device)
    always, first = constants.always, constants.first
    n_heads = layers[0].self_attn.num_heads
    head_dim = layers[0].self_attn.head_dim

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, -1, n_heads, head_dim).transpose(1, 2).contiguous()

    # Cross-attention keys and values: computed once per batch (generate does the same at step 0).
    cross_all = [(heads(l.encoder_attn.k_proj(encoder_hidden)), heads(l.encoder_attn.v_proj(encoder_hidden))) for l in layers]
    cross, active = cross_all, None  # `active`: the rows cross-attention is computed for (None: all)
    past: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(layers)
    limit = torch.tensor(limits, device=device)
    running = torch.ones(batch, dtype=torch.bool, device=device)
    prompts = prompt_ids if prompt_ids and isinstance(prompt_ids[0], list) else [prompt_ids] * batch
    x = torch.tensor(prompts, dtype=torch.long, device=device)
    pos, steps = 0, []
    for step in range(max(limits)):
        width = x.shape[1]
        hidden = dec.embed_tokens(x) + dec.embed_positions.weight[pos : pos + width]
        for i, layer in enumerate(layers):
            sa, ca = layer.self_attn, layer.encoder_attn
            residual = hidden
            h = layer.self_attn_layer_norm(hidden)
            q = heads(sa.q_proj(h) * sa.scaling)
            k, v = heads(sa.k_proj(h)), heads(sa.v_proj(h))
            if past[i] is not None:
                k = torch.cat([past[i][0], k], dim=-2)
                v = torch.cat([past[i][1], v], dim=-2)
            past[i] = (k, v)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, scale=1.0, is_causal=width > 1)
            a = a.transpose(1, 2).contiguous().reshape(batch, width, -1).contiguous()
            hidden = residual + sa.out_proj(a)

            residual = hidden
            h = layer.encoder_attn_layer_norm(hidden)
            q = heads(ca.q_proj(h) * ca.scaling)
            if active is None:
                a = F.scaled_dot_product_attention(q, cross[i][0], cross[i][1], attn_mask=None, dropout_p=0.0, scale=1.0)
            else:
                a = torch.zeros_like(q).index_copy_(0, active, F.scaled_dot_product_attention(
                    q.index_select(0, active), cross[i][0], cross[i][1], attn_mask=None, dropout_p=0.0, scale=1.0))
            a = a.transpose(1, 2).contiguous().reshape(batch, width, -1).contiguous()
            hidden = residual + ca.out_proj(a)

            residual = hidden
            h = layer.final_layer_norm(hidden)
            hidden = residual + layer.fc2(layer.activation_fn(layer.fc1(h)))
        # Only the last position's logits are used; layer norm works row by row, so normalizing that
        # position alone gives the same values.
        logits = constants.logits(model, dec.layer_norm(hidden[:, -1, :]))
        logits.masked_fill_(first if step == 0 else always, float("-inf"))
        token = torch.where(running, logits.argmax(-1), pad)
        steps.append(token)
        running &= token != eos
        pos += width
        alive = (running & (limit > step + 1)).nonzero().flatten()
        if len(alive) == 0:
            break
        if compact and len(alive) <= 0.75 * (batch if active is None else len(active)):
            # Rows that ended stop costing cross-attention (reading 1500 keys and values per layer
            # and step is most of a step's memory traffic). Attention is computed per row, so the
            # other rows' values do not change; every matrix product keeps the full batch, whose
            # shape (not the values of ended rows) decides the kernels and so the bits.
            active = alive
            cross = [(k.index_select(0, alive), v.index_select(0, alive)) for k, v in cross_all]
        x = token[:, None]
    out = []
    for row, lim in zip(torch.stack(steps, dim=1).tolist(), limits):
        row = row[:lim]
        out.append(row[: row.index(eos) + 1] if eos in row else row)
    return out


def generate_tokens(
    model: Any,
    prompt_ids: list[int] | list[list[int]],
    limits: list[int],
    settings: DecodeSettings,
    *,
    features: torch.Tensor | None = None,
    encoder_hidden: torch.Tensor | None = None,
    generate_kwargs: dict[str, Any] | None = None,
) -> list[list[int]]:
    """The reference: `model.generate` on features (or on given encoder outputs), cut at each limit."""
    inputs: dict[str, Any]
    if features is not None:
        inputs = {"input_features": features}
    else:
        from transformers.modeling_outputs import BaseModelOutput

        inputs = {"encoder_outputs": BaseModelOutput(last_hidden_state=encoder_hidden)}
    with torch.inference_mode():
        out = model.generate(
            **inputs,
            max_new_tokens=max(limits),
            return_dict_in_generate=True,  # then `sequences` starts with the prompt
            num_beams=settings.num_beams,
            do_sample=False,
            return_timestamps=False,
            **(generate_kwargs or {}),
        )
    sequences = out.sequences
    n = sequences.shape[0]
    prompts = prompt_ids if prompt_ids and isinstance(prompt_ids[0], list) else [prompt_ids] * n
    width = len(prompts[0])
    if sequences[:, :width].tolist() != prompts:
        raise RuntimeError(f"generate did not start from the expected prompts {prompts[:2]}...: {sequences[:, :6].tolist()}")
    return [seq[:lim] for seq, lim in zip(sequences[:, width:].tolist(), limits)]


@torch.inference_mode()
def detect_languages(model: Any, encoder_hidden: torch.Tensor) -> list[int]:
    """Whisper's language detection, as `generate`'s `detect_language`: one decoder step from
    <|startoftranscript|>, the argmax over the language tokens. Returns a language token id per row."""
    gc = model.generation_config
    sot = torch.full((encoder_hidden.shape[0], 1), int(gc.decoder_start_token_id), dtype=torch.long, device=encoder_hidden.device)
    hidden = model.model.decoder(input_ids=sot, encoder_hidden_states=encoder_hidden, use_cache=False).last_hidden_state
    logits = model.proj_out(hidden[:, -1]).float()
    lang_ids = torch.tensor(sorted(gc.lang_to_id.values()), device=logits.device)
    return lang_ids[logits[:, lang_ids].argmax(-1)].tolist()


def auto_prompts(model: Any, lang_ids: list[int]) -> list[list[int]]:
    """<|sot|> <|lang|> <|transcribe|> <|notimestamps|> per row, with each row's detected language."""
    gc = model.generation_config
    return [[int(gc.decoder_start_token_id), lang, int(gc.task_to_id["transcribe"]), int(gc.no_timestamps_token_id)] for lang in lang_ids]


def prompt_language(model: Any, prompt: list[int]) -> str:
    """The language a prompt decodes in: its language token's code, `en` for English-only models."""
    by_id = {int(v): k.strip("<|>") for k, v in (getattr(model.generation_config, "lang_to_id", None) or {}).items()}
    return next((by_id[t] for t in prompt if t in by_id), "en")


# ------------------------------------------------------------------------------------------------
# A dataset


def _rows(
    chunk: pd.DataFrame, new_tokens: list[list[int]], limits: list[int], seconds: float, cached: bool, tokenizer, eos: int,
    languages: list[str],
) -> list[dict]:
    rows = []
    for (_, rec), new, lim, language in zip(chunk.iterrows(), new_tokens, limits, languages):
        ended = eos in new
        text_tokens = new[: new.index(eos)] if ended else new
        rows.append(
            {
                "id": rec["id"],
                "reference": rec["text"],
                "hypothesis": tokenizer.decode(text_tokens, skip_special_tokens=True).strip(),
                "duration_s": float(rec["duration_s"]),
                "n_tokens": len(text_tokens),
                "token_limit": lim,
                "hit_token_limit": not ended,
                "decode_s": seconds,
                "encoder_cached": cached,
                "language": language,
            }
        )
    return rows


def _fill_entries(
    writers: dict[int, tuple[EntryWriter, dict]],
    chunks,
    model,
    processor,
    device,
    dtype,
    source: tuple[int, EntryReader] | None = None,
) -> dict[int, float] | None:
    """Compute the states entering each writer's block for every batch and publish every entry.

    One pass through the encoder per batch, stopping at each boundary in turn; it starts from the
    `source` entry's states (an earlier boundary stored, or being stored, by another job) where it
    can, from the features otherwise. Returns the seconds spent per batch, and the batches that
    started from the source: their encoder states count as read from the cache.
    """
    bounds = sorted(writers)
    seconds: dict[int, float] = {}
    resumed: set[int] = set()
    try:
        for i, chunk in enumerate(chunks):
            start = time.perf_counter()
            with torch.inference_mode():
                hidden = source[1].get(i, device) if source is not None else None
                if hidden is not None:
                    hidden, at = hidden.to(dtype=dtype), source[0]
                    resumed.add(i)
                else:
                    features = chunk_features(chunk, processor).to(device=device, dtype=dtype)
                    hidden, at = encoder_stem(model, features), 0
                for k in bounds:
                    hidden, at = encoder_blocks(model, hidden, at, k), k
                    writers[k][0].put(i, hidden)
            seconds[i] = time.perf_counter() - start
        for writer, fields in writers.values():
            writer.publish(fields)
    except Exception as err:  # noqa: BLE001 - the cache must never fail a decode
        log.warning("encoder cache: writing %s failed (%s); decoding without it", [w.key[:12] for w, _ in writers.values()], err)
        for writer, _ in writers.values():
            writer.abort()
        return None
    return seconds, resumed


def cache_fields(model, processor, settings: DecodeSettings, spec: CacheSpec) -> dict[str, Any]:
    """What the encoder-cache key of this model, dataset and boundary is made of (asrprune.encoder_cache)."""
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    config_sha256 = spec.config_sha256 or hashlib.sha256(model.config.to_json_string().encode()).hexdigest()
    return {
        "weights_sha256": spec.weights_sha256,
        "config_sha256": config_sha256,
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "boundary": spec.resume_layer,
        "encoder_layers": model.config.encoder_layers,
        "dataset_sha256": spec.dataset_sha256,
        "features": feature_settings(processor.feature_extractor),
        "batch_size": settings.batch_size,
        "order": BATCH_ORDER,
        **numeric_context(device, dtype),
    }


def open_cache_entry(model, processor, df: pd.DataFrame, chunks, settings: DecodeSettings, spec: CacheSpec):
    """(reader or None, {batch: (seconds spent writing, started from a stored boundary)}, key or None)."""
    n_layers = model.config.encoder_layers
    k = spec.resume_layer
    if not settings.encoder_cache or k < 1:
        if k < 1:
            log.info("encoder cache: the variant changes the encoder stem or its first block; computing in full")
        return None, {}, None
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    nbytes = entry_bytes(len(df), model.config.max_source_positions, model.config.d_model, dtype)
    if not spec.cache.fits(nbytes):
        log.info("encoder cache: an entry of %.0f MB exceeds the cap of %.0f MB; not caching", nbytes / 2**20, spec.cache.cap_bytes / 2**20)
        return None, {}, None
    fields = cache_fields(model, processor, settings, spec)
    key = cache_key(fields)
    batches = [list(c["id"]) for c in chunks]
    handle = spec.cache.open(key, batches, need_bytes=nbytes)
    if isinstance(handle, EntryWriter):
        # Earlier boundaries of the grid: start from the deepest one already stored (or being
        # stored), and store the missing ones between it and this job's own on the way. A job only
        # ever follows a boundary below every one it writes, so jobs cannot wait on each other in a circle.
        extras = {b: cache_fields(model, processor, settings, replace(spec, resume_layer=b))
                  for b in sorted(set(spec.also_store)) if 0 < b < k}
        source = None
        for b in sorted(extras, reverse=True):
            if (reader := spec.cache.find(cache_key(extras[b]), batches)) is not None:
                source = (b, reader)
                break
        writers = {k: (handle, fields)}
        for b, extra_fields in extras.items():
            if b > (source[0] if source else 0):  # same size as this job's own entry, which fits
                other = spec.cache.open(cache_key(extra_fields), batches, need_bytes=nbytes)
                if isinstance(other, EntryWriter):  # a reader: another job got there first
                    writers[b] = (other, extra_fields)
        log.info("encoder cache: computing boundaries %s of %d%s", sorted(writers), n_layers,
                 f", starting from stored boundary {source[0]}" if source else "")
        filled = _fill_entries(writers, chunks, model, processor, device, dtype, source)
        if filled is None:
            return None, {}, key
        seconds, resumed = filled
        # per batch: the seconds spent writing, and whether its states came from the cache (resumed)
        written = {i: (t, i in resumed) for i, t in seconds.items()}
        return EntryReader(spec.cache, key, batches, published=True), written, key
    if handle is not None:
        log.info("encoder cache: %s entry %s (boundary %d of %d)", "reading" if handle.published else "following", key[:12], k, n_layers)
    return handle, {}, key


def decode_frame(
    model,
    processor,
    prompt_ids: list[int],
    df: pd.DataFrame,
    settings: DecodeSettings,
    generate_kwargs: dict[str, Any] | None = None,
    *,
    cache: CacheSpec | None = None,
) -> pd.DataFrame:
    """Decode every utterance of `df`; the result is sorted by id.

    Utterances run longest first in batches; each gets its own token limit (the batch generates up
    to the largest and longer hypotheses are cut at their own limit, which for greedy decoding is
    exactly what a per-utterance limit gives). With `cache`, the encoder states come from (or go
    into) the encoder cache; `decode_s` is each batch's wall time per utterance, including its share
    of writing the cache.
    """
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    tokenizer = processor.tokenizer
    eos = int(model.generation_config.eos_token_id)
    ceiling = model.config.max_target_positions - len(prompt_ids)
    backend = settings.backend
    if backend == "fast" and (why := fast_unsupported(model, settings, generate_kwargs)):
        log.info("decoding with generate instead of the fast loop: %s", why)
        backend = "generate"
    constants = loop_constants(model, device) if backend == "fast" else None
    from asrprune.models import model_is_multilingual

    # decoding.language auto: each utterance's language detected, then transcribed in it
    auto = settings.language == "auto" and model_is_multilingual(model)
    chunks = batch_chunks(df, settings.batch_size)
    n_layers = model.config.encoder_layers
    reader, written, _ = open_cache_entry(model, processor, df, chunks, settings, cache) if cache else (None, {}, None)
    k = cache.resume_layer if reader is not None else n_layers

    rows: list[dict] = []
    bar = tqdm(total=len(df), desc="decode", unit="utt", mininterval=5)
    for i, chunk in enumerate(chunks):
        start = time.perf_counter()
        limits = [token_limit(float(d), settings, ceiling) for d in chunk["duration_s"]]
        prompts: list[int] | list[list[int]] = prompt_ids
        with torch.inference_mode():
            hidden = reader.get(i, device) if reader is not None else None
            cached = hidden is not None and (i not in written or written[i][1])
            if hidden is None and backend == "generate" and reader is None and not auto:
                features = chunk_features(chunk, processor).to(device=device, dtype=dtype)
                new = generate_tokens(model, prompt_ids, limits, settings, features=features, generate_kwargs=generate_kwargs)
            else:
                if hidden is None:
                    features = chunk_features(chunk, processor).to(device=device, dtype=dtype)
                    encoded = encode(model, features)
                else:
                    encoded = encoder_resume(model, hidden.to(dtype=dtype), k)
                extra = dict(generate_kwargs or {})
                if auto:
                    prompts = auto_prompts(model, detect_languages(model, encoded))
                    extra.update(language=[prompt_language(model, p) for p in prompts], task="transcribe")
                if backend == "fast":
                    new = greedy_decode(model, encoded, prompts, limits, constants)
                else:
                    new = generate_tokens(model, prompts, limits, settings, encoder_hidden=encoded, generate_kwargs=extra)
        seconds = (time.perf_counter() - start + written.get(i, (0.0, False))[0]) / len(chunk)
        per_row = prompts if auto else [prompt_ids] * len(chunk)
        rows += _rows(chunk, new, limits, seconds, cached, tokenizer, eos, [prompt_language(model, p) for p in per_row])
        bar.update(len(chunk))
    bar.close()
    n_cached = sum(r["encoder_cached"] for r in rows)
    log.info("decoded %d utterances (%s backend), %d from cached encoder states", len(rows), backend, n_cached)
    return pd.DataFrame(rows, columns=DECODE_COLUMNS).sort_values("id", kind="stable").reset_index(drop=True)
