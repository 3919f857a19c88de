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

Here: `decode_frame` (its settings: asrprune.settings), which batches a dataset (asrprune.batches) and puts the
pieces together: the encoder (asrprune.encoder), the encoder cache (asrprune.decode_cache), the
fast loop (asrprune.greedy) or `generate` (asrprune.generation), one row per utterance.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from asrprune.batches import batch_chunks, chunk_features
from asrprune.components import model_is_multilingual
from asrprune.decode_cache import CacheSpec, open_cache_entry
from asrprune.encoder import encode, encoder_resume
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


def resolve_device(setting: str) -> torch.device:
    """`auto` picks CUDA when present, else CPU; asking for CUDA without one is an error."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("decoding.device = 'cuda' but no CUDA device is visible: expected a GPU or device 'auto'/'cpu'")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


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
    # decoding.language auto: each utterance's language detected, then transcribed in it
    auto = settings.language == "auto" and model_is_multilingual(model)
    chunks = batch_chunks(df, settings.batch_size)
    n_layers = model.config.encoder_layers
    reader, written = open_cache_entry(model, processor, df, chunks, settings, cache) if cache else (None, {})
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
