"""A decode job's encoder pass through the encoder cache: which entry it reads, or which boundaries it
computes and stores for the other variants of the grid (asrprune.encoder_cache keeps the entries).

`open_cache_entry` returns a reader of the states entering the variant's first changed block; a
job that finds none computes the encoder once up to its own boundary, storing the states it passes
at every earlier boundary the grid resumes from, and starting from the deepest one already stored.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from asrprune.batches import BATCH_ORDER, chunk_features
from asrprune.encoder import encoder_blocks, encoder_stem
from asrprune.encoder_cache import (
    EncoderCache,
    EntryReader,
    EntryWriter,
    cache_key,
    entry_bytes,
    feature_settings,
    numeric_context,
)

if TYPE_CHECKING:
    from asrprune.settings import DecodeSettings

log = logging.getLogger(__name__)


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
    # sha256 of the base model's config.json (the decode stage passes the file's, from its manifest);
    # None: the sha256 of the loaded config serialized as save_pretrained writes it.
    config_sha256: str | None = None


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
    """(reader or None, {batch: (seconds spent writing, started from a stored boundary)}).

    The caller passes a spec only when the encoder cache is on (execution.encoder_cache)."""
    n_layers = model.config.encoder_layers
    k = spec.resume_layer
    if k < 1:
        log.info("encoder cache: the variant changes the encoder stem or its first block; computing in full")
        return None, {}
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    nbytes = entry_bytes(len(df), model.config.max_source_positions, model.config.d_model, dtype)
    if not spec.cache.fits(nbytes):
        log.info("encoder cache: an entry of %.0f MB exceeds the cap of %.0f MB; not caching", nbytes / 2**20, spec.cache.cap_bytes / 2**20)
        return None, {}
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
            return None, {}
        seconds, resumed = filled
        # per batch: the seconds spent writing, and whether its states came from the cache (resumed)
        written = {i: (t, i in resumed) for i, t in seconds.items()}
        return EntryReader(spec.cache, key, batches, published=True), written
    if handle is not None:
        log.info("encoder cache: %s entry %s (boundary %d of %d)", "reading" if handle.published else "following", key[:12], k, n_layers)
    return handle, {}
