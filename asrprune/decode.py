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

The encoder side is independent of the backend: it runs in full, resumes from states that
``asrprune.encoder_cache`` keeps on disk for variants that leave a prefix of the encoder untouched,
or, for ``generate`` with fixed prompts and no usable cache entry, is left to ``generate``
(asrprune.encoder_states).

Here: `decode_frame` (its settings: asrprune.settings) batches a dataset (asrprune.batches) and,
per batch, takes the encoder states from its source (asrprune.encoder_states), the prompts (fixed,
or each utterance's detected language: asrprune.generation), the tokens from the decoder (the fast
loop, asrprune.greedy, or `generate`), and makes one row per utterance.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
import torch
from tqdm import tqdm

from asrprune.batches import batch_chunks
from asrprune.components import model_is_multilingual
from asrprune.encoder_states import CacheSpec, EncodedBatch, EncoderSource, FeaturesOnly, FullEncoder, encoder_source
from asrprune.generation import auto_prompts, detect_languages, generate_tokens, prompt_language
from asrprune.greedy import fast_unsupported, greedy_decode, loop_constants
from asrprune.settings import DecodeSettings, token_limit

log = logging.getLogger(__name__)

DECODE_COLUMNS = [
    "id",
    "prompt_id",  # the data set's sentence_id: every reading and degraded copy of one sentence shares it
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


# ------------------------------------------------------------------------------------------------
# Prompts


@dataclass(frozen=True)
class Prompts:
    """The decoder prompts of one batch."""

    ids: list[int] | list[list[int]]  # one prompt for every row, or one per row
    languages: list[str]  # the language each row decodes in
    detected: bool = False  # one prompt per row, from language detection


class FixedPrompts:
    """The same prompt for every utterance."""

    def __init__(self, model, prompt_ids: list[int]):
        self.ids, self.language = prompt_ids, prompt_language(model, prompt_ids)

    def for_batch(self, encoded: EncodedBatch, n_rows: int) -> Prompts:
        return Prompts(self.ids, [self.language] * n_rows)


class DetectedPrompts:
    """Each utterance transcribed in the language detected from its encoder states (`decoding.language: auto`)."""

    def __init__(self, model):
        self.model = model

    def for_batch(self, encoded: EncodedBatch, n_rows: int) -> Prompts:
        ids = auto_prompts(self.model, detect_languages(self.model, encoded.hidden))
        return Prompts(ids, [prompt_language(self.model, p) for p in ids], detected=True)


def choose_prompts(model, prompt_ids: list[int], settings: DecodeSettings) -> FixedPrompts | DetectedPrompts:
    """Detected per utterance when `decoding.language` is `auto` on a multilingual model, else fixed."""
    if settings.language == "auto" and model_is_multilingual(model):
        return DetectedPrompts(model)
    return FixedPrompts(model, prompt_ids)


# ------------------------------------------------------------------------------------------------
# Decoders


class Decoder(Protocol):
    """A decoder backend, chosen once per job (`choose_decoder`)."""

    backend: str  # its name in the log

    def tokens(self, encoded: EncodedBatch, prompts: Prompts, limits: list[int]) -> list[list[int]]:
        """The tokens after each row's prompt, at most its limit."""
        ...


class FastDecoder:
    """The batched greedy loop (asrprune.greedy) on the encoder's states."""

    backend = "fast"

    def __init__(self, model):
        self.model = model
        self.constants = loop_constants(model, next(model.parameters()).device)

    def tokens(self, encoded: EncodedBatch, prompts: Prompts, limits: list[int]) -> list[list[int]]:
        return greedy_decode(self.model, encoded.hidden, prompts.ids, limits, self.constants)


class GenerateDecoder:
    """`model.generate` on the encoder's states, or on the features when it runs the encoder itself."""

    backend = "generate"

    def __init__(self, model, settings: DecodeSettings, generate_kwargs: dict[str, Any] | None):
        self.model, self.settings, self.generate_kwargs = model, settings, generate_kwargs or {}

    def tokens(self, encoded: EncodedBatch, prompts: Prompts, limits: list[int]) -> list[list[int]]:
        kwargs = dict(self.generate_kwargs)
        if prompts.detected:  # generate builds its own prompts: it is told each row's language
            kwargs.update(language=prompts.languages, task="transcribe")
        return generate_tokens(self.model, prompts.ids, limits, self.settings, features=encoded.features,
                               encoder_hidden=encoded.hidden, generate_kwargs=kwargs)


def choose_decoder(model, settings: DecodeSettings, generate_kwargs: dict[str, Any] | None) -> Decoder:
    """The backend `settings` asks for; `generate` where the fast loop cannot reproduce it (logged)."""
    if settings.backend == "fast":
        why = fast_unsupported(model, settings, generate_kwargs)
        if why is None:
            return FastDecoder(model)
        log.info("decoding with generate instead of the fast loop: %s", why)
    return GenerateDecoder(model, settings, generate_kwargs)


# ------------------------------------------------------------------------------------------------
# A dataset


def _rows(
    chunk: pd.DataFrame, new_tokens: list[list[int]], limits: list[int], seconds: float, cached: bool, tokenizer, eos: int,
    languages: list[str],
) -> list[dict]:
    """One batch's output rows (DECODE_COLUMNS): each hypothesis cut at its eos and detokenized."""
    rows = []
    for (_, rec), new, lim, language in zip(chunk.iterrows(), new_tokens, limits, languages):
        ended = eos in new
        text_tokens = new[: new.index(eos)] if ended else new
        rows.append(
            {
                "id": rec["id"],
                # the resampling unit of the statistics (asrprune.stats); a set without sentence ids
                # (older files) makes every row its own prompt
                "prompt_id": str(rec["sentence_id"]) if "sentence_id" in rec.index else str(rec["id"]),
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
    chunks = batch_chunks(df, settings.batch_size)
    decoder = choose_decoder(model, settings, generate_kwargs)
    prompting = choose_prompts(model, prompt_ids, settings)
    source: EncoderSource | None = encoder_source(model, processor, df, chunks, settings, cache) if cache else None
    if source is None:
        # generate runs the encoder itself, unless the prompts need the encoder's states first
        reference = isinstance(decoder, GenerateDecoder) and isinstance(prompting, FixedPrompts)
        source = FeaturesOnly(model, processor) if reference else FullEncoder(model, processor)

    tokenizer = processor.tokenizer
    eos = int(model.generation_config.eos_token_id)
    ceiling = model.config.max_target_positions - len(prompt_ids)
    rows: list[dict] = []
    bar = tqdm(total=len(df), desc="decode", unit="utt", mininterval=5)
    for i, chunk in enumerate(chunks):
        start = time.perf_counter()
        limits = [token_limit(float(d), settings, ceiling) for d in chunk["duration_s"]]
        with torch.inference_mode():
            encoded = source.states(i, chunk)
            prompts = prompting.for_batch(encoded, len(chunk))
            tokens = decoder.tokens(encoded, prompts, limits)
        seconds = (time.perf_counter() - start + encoded.write_s) / len(chunk)
        rows += _rows(chunk, tokens, limits, seconds, encoded.cached, tokenizer, eos, prompts.languages)
        bar.update(len(chunk))
    bar.close()
    n_cached = sum(r["encoder_cached"] for r in rows)
    log.info("decoded %d utterances (%s backend), %d from cached encoder states", len(rows), decoder.backend, n_cached)
    return pd.DataFrame(rows, columns=DECODE_COLUMNS).sort_values("id", kind="stable").reset_index(drop=True)
