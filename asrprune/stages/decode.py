"""decode: one test set decoded by one variant (the baseline is an empty mask set) -> per-utterance rows."""

from __future__ import annotations

import logging
from typing import Any

from asrprune.io import write_parquet
from asrprune.plan import execution_settings, grid_targets
from asrprune.job import Job

log = logging.getLogger(__name__)


def run(job: Job) -> None:
    decode_variant(
        model_dir=job.input.model,
        mask_dir=job.input.masks,
        data_path=job.input.data,
        out_path=job.output[0],
        decoding=job.params["decoding"],
        # execution settings (the encoder cache) are read from the config, not params: they rerun nothing
        execution=execution_settings(job.config),
        cache_dir=job.params.get("cache_dir"),
        # outside the job's params on purpose: which states it also caches never changes its output
        grid_targets=grid_targets(job.config),
    )


def decode_variant(
    model_dir: str,
    mask_dir: str,
    data_path: str,
    out_path: str,
    decoding: dict[str, Any],
    execution: dict[str, Any] | None = None,
    cache_dir: str | None = None,
    grid_targets: list[str] | tuple[str, ...] = (),
) -> None:
    """Load the base model, apply the variant's mask set, decode a test set, write per-utterance rows.

    With `cache_dir` (the rule passes results/store/cache/encoder) and `execution.encoder_cache` on, a
    variant that leaves a prefix of the encoder untouched reads the base model's encoder states
    from the cache (asrprune.encoder_cache), or computes and stores them for the next variant;
    while it computes, it also stores the states at the boundaries `grid_targets` resume from
    (asrprune.plan.grid_targets), so that a baseline decode serves the encoder-range variants too.
    """
    import torch

    from asrprune.decode import decode_frame
    from asrprune.encoder_cache import EncoderCache, changed_tensors, resume_boundary, target_boundaries
    from asrprune.encoder_states import CacheSpec
    from asrprune.io import read_split, sha256_file
    from asrprune.masks import apply_masks, check_base, load_mask_set
    from asrprune.models.load import generation_prompt_ids, load_model, read_model_manifest
    from asrprune.settings import DecodeSettings, ExecutionSettings, resolve_device

    settings = DecodeSettings.from_config(decoding)
    run_as = ExecutionSettings.from_config(execution)
    device = resolve_device(settings.device)
    model, processor = load_model(model_dir)
    base_manifest = read_model_manifest(model_dir)
    masks, mask_manifest = load_mask_set(mask_dir)
    check_base(mask_manifest, base_manifest)
    apply_masks(model, masks)
    if device.type == "cuda":
        model = model.to(device=device, dtype=getattr(torch, settings.gpu_dtype))
    df = read_split(data_path)
    cache = None
    if cache_dir and run_as.encoder_cache and run_as.encoder_cache_mb > 0:
        cache = CacheSpec(
            cache=EncoderCache.from_mb(cache_dir, run_as.encoder_cache_mb),
            weights_sha256=base_manifest["weights_sha256"],
            dataset_sha256=sha256_file(data_path),
            resume_layer=resume_boundary(changed_tensors(masks), model.config.encoder_layers),
            also_store=target_boundaries(model, grid_targets),
            config_sha256=base_manifest.get("files", {}).get("config.json"),
        )
    log.info("decoding %d utterances of %s with %s on %s (%s backend)", len(df), data_path, mask_dir, device, settings.backend)
    decoded = decode_frame(model, processor, generation_prompt_ids(model), df, settings, cache=cache)
    write_parquet(decoded, out_path, metadata={"decoding": decoding, "device": str(device)})
