"""The encoder side of a decode job: where each batch's encoder states come from.

Three sources, one interface (`EncoderSource.states(i, chunk) -> EncodedBatch`):

- `FullEncoder`: the encoder run in full on the batch's log-Mel features (asrprune.encoder.encode);
- `CachedEncoder`: states read from the encoder cache (asrprune.encoder_cache) at the variant's
  first changed block, the rest of the encoder run on top (encoder_resume);
- `FeaturesOnly`: just the features, for the `generate` reference, which runs the encoder itself.

`encoder_source` picks the cache's entry for a job: it reads an entry another job stored (or is
storing); a job that finds none computes the encoder once up to its own boundary, storing the states
it passes at every earlier boundary the grid resumes from and starting from the deepest one already
stored, then reads its own entry back like any other.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
import torch

from asrprune.batches import BATCH_ORDER, chunk_features
from asrprune.encoder import encode, encoder_blocks, encoder_resume, encoder_stem
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


# ------------------------------------------------------------------------------------------------
# Sources of a batch's encoder states


@dataclass(frozen=True)
class EncodedBatch:
    """One batch's encoder side, as a decoder reads it."""

    hidden: torch.Tensor | None  # the encoder's output; None: only `features` (generate encodes them)
    features: torch.Tensor | None = None
    cached: bool = False  # the states came from the encoder cache, not from this batch's features
    write_s: float = 0.0  # seconds this job spent writing cache entries for this batch


class EncoderSource(Protocol):
    """Where a decode job's encoder states come from, batch by batch."""

    def states(self, i: int, chunk: pd.DataFrame) -> EncodedBatch:
        """The encoder side of batch `i` (its rows: `chunk`)."""
        ...


def batch_features(model, processor, chunk: pd.DataFrame) -> torch.Tensor:
    """Log-Mel features of a batch, on the model's device and in its dtype."""
    p = next(model.parameters())
    return chunk_features(chunk, processor).to(device=p.device, dtype=p.dtype)


@dataclass(frozen=True)
class FullEncoder:
    """The whole encoder on each batch's features."""

    model: Any
    processor: Any

    def states(self, i: int, chunk: pd.DataFrame) -> EncodedBatch:
        return EncodedBatch(encode(self.model, batch_features(self.model, self.processor, chunk)))


@dataclass(frozen=True)
class FeaturesOnly:
    """Each batch's features and no encoder states: the `generate` reference runs the encoder itself."""

    model: Any
    processor: Any

    def states(self, i: int, chunk: pd.DataFrame) -> EncodedBatch:
        return EncodedBatch(None, features=batch_features(self.model, self.processor, chunk))


@dataclass
class CachedEncoder:
    """The encoder resumed at `boundary` from an entry's states; a batch the entry cannot serve is
    computed in full (and does not count as cached)."""

    model: Any
    processor: Any
    reader: EntryReader
    boundary: int  # the states entering this encoder block are read
    # When this job filled the entry itself: seconds spent writing per batch (counted in its decode
    # time), and the batches it computed from features, whose states were not read from the cache.
    write_s: dict[int, float] = field(default_factory=dict)
    from_features: set[int] = field(default_factory=set)

    def states(self, i: int, chunk: pd.DataFrame) -> EncodedBatch:
        p = next(self.model.parameters())
        write_s = self.write_s.get(i, 0.0)
        hidden = self.reader.get(i, p.device)
        if hidden is None:
            return EncodedBatch(encode(self.model, batch_features(self.model, self.processor, chunk)), write_s=write_s)
        encoded = encoder_resume(self.model, hidden.to(dtype=p.dtype), self.boundary)
        return EncodedBatch(encoded, cached=i not in self.from_features, write_s=write_s)


# ------------------------------------------------------------------------------------------------
# The cache entry of a job


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


def encoder_source(model, processor, df: pd.DataFrame, chunks, settings: DecodeSettings, spec: CacheSpec) -> CachedEncoder | None:
    """The job's states from the encoder cache (filling the entry first when no job has), or None
    when the cache cannot serve this variant or dataset. The caller passes a spec only when the
    encoder cache is on (execution.encoder_cache)."""
    k = spec.resume_layer
    if k < 1:
        log.info("encoder cache: the variant changes the encoder stem or its first block; computing in full")
        return None
    nbytes = entry_bytes(len(df), model.config.max_source_positions, model.config.d_model, next(model.parameters()).dtype)
    if not spec.cache.fits(nbytes):
        log.info("encoder cache: an entry of %.0f MB exceeds the cap of %.0f MB; not caching", nbytes / 2**20, spec.cache.cap_bytes / 2**20)
        return None
    fields = cache_fields(model, processor, settings, spec)
    batches = [list(c["id"]) for c in chunks]
    handle = spec.cache.open(cache_key(fields), batches, need_bytes=nbytes)
    if isinstance(handle, EntryWriter):
        return _fill_and_read(model, processor, chunks, settings, spec, (handle, fields), nbytes)
    if handle is None:  # an entry of another batching: not used
        return None
    log.info("encoder cache: %s entry %s (boundary %d of %d)", "reading" if handle.published else "following",
             handle.key[:12], k, model.config.encoder_layers)
    return CachedEncoder(model, processor, handle, k)


def _fill_and_read(model, processor, chunks, settings: DecodeSettings, spec: CacheSpec,
                   own: tuple[EntryWriter, dict], nbytes: int) -> CachedEncoder | None:
    """This job writes its entry (`own`): fill it, with the grid's earlier boundaries on the way, and
    read it back; None when writing failed (the job then decodes without the cache)."""
    k = spec.resume_layer
    batches = own[0].batches
    # Earlier boundaries of the grid: start from the deepest one already stored (or being stored), and
    # store the missing ones between it and this job's own on the way. A job only ever follows a
    # boundary below every one it writes, so jobs cannot wait on each other in a circle.
    earlier = {b: cache_fields(model, processor, settings, replace(spec, resume_layer=b))
               for b in sorted(set(spec.also_store)) if 0 < b < k}
    start = None
    for b in sorted(earlier, reverse=True):
        if (reader := spec.cache.find(cache_key(earlier[b]), batches)) is not None:
            start = (b, reader)
            break
    writers = {k: own}
    for b, fields in earlier.items():
        if b > (start[0] if start else 0):  # same size as this job's own entry, which fits
            other = spec.cache.open(cache_key(fields), batches, need_bytes=nbytes)
            if isinstance(other, EntryWriter):  # a reader: another job got there first
                writers[b] = (other, fields)
    log.info("encoder cache: computing boundaries %s of %d%s", sorted(writers), model.config.encoder_layers,
             f", starting from stored boundary {start[0]}" if start else "")
    filled = _fill_entries(writers, chunks, model, processor, start)
    if filled is None:
        return None
    write_s, from_features = filled
    return CachedEncoder(model, processor, EntryReader(spec.cache, own[0].key, batches, published=True), k, write_s, from_features)


def _fill_entries(
    writers: dict[int, tuple[EntryWriter, dict]],
    chunks,
    model,
    processor,
    start: tuple[int, EntryReader] | None = None,
) -> tuple[dict[int, float], set[int]] | None:
    """Compute the states entering each writer's block for every batch and publish every entry.

    One pass through the encoder per batch, stopping at each boundary in turn; it starts from the
    `start` entry's states (an earlier boundary stored, or being stored, by another job) where it
    can, from the features otherwise. Returns the seconds spent per batch and the batches computed
    from features (the others' states count as read from the cache); None when writing failed.
    """
    bounds = sorted(writers)
    p = next(model.parameters())
    seconds: dict[int, float] = {}
    from_features: set[int] = set()
    try:
        for i, chunk in enumerate(chunks):
            t0 = time.perf_counter()
            with torch.inference_mode():
                hidden = start[1].get(i, p.device) if start is not None else None
                if hidden is not None:
                    hidden, at = hidden.to(dtype=p.dtype), start[0]
                else:
                    hidden, at = encoder_stem(model, batch_features(model, processor, chunk)), 0
                    from_features.add(i)
                for b in bounds:
                    hidden, at = encoder_blocks(model, hidden, at, b), b
                    writers[b][0].put(i, hidden)
            seconds[i] = time.perf_counter() - t0
        for writer, fields in writers.values():
            writer.publish(fields)
    except Exception as err:  # noqa: BLE001 - the cache must never fail a decode
        log.warning("encoder cache: writing %s failed (%s); decoding without it", [w.key[:12] for w, _ in writers.values()], err)
        for writer, _ in writers.values():
            writer.abort()
        return None
    return seconds, from_features
