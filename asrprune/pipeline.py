"""Stage entry points that tie library pieces together: what a script (or a notebook) calls."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from asrprune.io import atomic_path, write_parquet

log = logging.getLogger(__name__)


def decode_variant(
    model_dir: str,
    mask_dir: str,
    data_path: str,
    out_path: str,
    decoding: dict[str, Any],
    cache_dir: str | None = None,
    grid_targets: list[str] | tuple[str, ...] = (),
) -> None:
    """Load the base model, apply the variant's mask set, decode a test set, write per-utterance rows.

    With `cache_dir` (the rule passes results/cache/encoder) and `decoding.encoder_cache` on, a
    variant that leaves a prefix of the encoder untouched reads the base model's encoder states
    from the cache (asrprune.encoder_cache), or computes and stores them for the next variant;
    while it computes, it also stores the states at the boundaries `grid_targets` resume from
    (asrprune.plan.grid_targets), so that a baseline decode serves the encoder-range variants too.
    """
    import torch

    from asrprune.batches import read_split
    from asrprune.decode import CacheSpec, DecodeSettings, decode_frame, resolve_device
    from asrprune.encoder_cache import EncoderCache, changed_tensors, resume_boundary, target_boundaries
    from asrprune.io import sha256_file
    from asrprune.masks import apply_masks, check_base, load_mask_set
    from asrprune.models import generation_prompt_ids, load_model

    settings = DecodeSettings.from_config(decoding)
    device = resolve_device(settings.device)
    model, processor = load_model(model_dir)
    base_manifest = json.loads((Path(model_dir) / "manifest.json").read_text())
    masks, mask_manifest = load_mask_set(mask_dir)
    check_base(mask_manifest, base_manifest)
    apply_masks(model, masks)
    if device.type == "cuda":
        model = model.to(device=device, dtype=getattr(torch, settings.gpu_dtype))
    df = read_split(data_path)
    cache = None
    if cache_dir and settings.encoder_cache and settings.encoder_cache_mb > 0:
        cache = CacheSpec(
            cache=EncoderCache.from_mb(cache_dir, settings.encoder_cache_mb),
            weights_sha256=base_manifest["weights_sha256"],
            dataset_sha256=sha256_file(data_path),
            resume_layer=resume_boundary(changed_tensors(masks), model.config.encoder_layers),
            also_store=target_boundaries(model, grid_targets),
            config_sha256=base_manifest.get("files", {}).get("config.json"),
        )
    log.info("decoding %d utterances of %s with %s on %s (%s backend)", len(df), data_path, mask_dir, device, settings.backend)
    decoded = decode_frame(model, processor, generation_prompt_ids(model), df, settings, cache=cache)
    write_parquet(decoded, out_path, metadata={"decoding": decoding, "device": str(device)})


def aggregate(
    score_paths: list[str],
    mask_dirs: list[str],
    predicted_paths: list[str],
    out_table: str,
    out_csv: str,
    out_correlation: str,
    scoring: dict[str, Any],
    decoding: dict[str, Any],
    config_hash: str,
) -> pd.DataFrame:
    """Build the WER table and the predicted-vs-measured correlation table."""
    from asrprune.tables import build_table, damage_correlation

    manifests = {}
    for d in mask_dirs:
        p = Path(d)
        manifests[(p.parent.name, p.name)] = json.loads((p / "manifest.json").read_text())
    predicted = pd.concat([pd.read_parquet(p) for p in predicted_paths]) if predicted_paths else None
    table = build_table(
        score_paths,
        manifests,
        samples=scoring["bootstrap_samples"],
        seed=scoring["seed"],
        decoding=decoding,
        config_hash=config_hash,
        predicted=predicted,
    )
    write_parquet(table, out_table)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    write_parquet(damage_correlation(table), out_correlation)
    log.info("wrote %d rows to %s", len(table), out_table)
    return table
