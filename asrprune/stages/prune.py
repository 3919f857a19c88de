"""prune: one variant's mask set (asrprune.methods) -> results/{name}/masks/{model}/{variant}/ (asrprune.masks)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from asrprune import activations, masks, methods, schedules
from asrprune.components import target_tensors
from asrprune.job import Job
from asrprune.variants import Variant

log = logging.getLogger(__name__)


def run(job: Job) -> None:
    # The rule passes its settings as one dict `params.prune`; plain params work too.
    params = dict(job.params.get("prune") or job.params)
    # the calibration seed picks the same utterances as the sensitivity stage's Fisher
    params.setdefault("calib_seed", job.config.get("calibration", {}).get("seed", 0))
    prune_variant(
        job.input.model,
        job.wildcards["variant"],
        params,
        job.output.masks,
        fisher_path=job.input.get("fisher"),
        calib_path=job.input.get("calib"),
    )


def prune_variant(
    model_dir: str | Path,
    variant: str,
    params: dict[str, Any],
    out_dir: str | Path,
    *,
    fisher_path: str | Path | None = None,
    calib_path: str | Path | None = None,
) -> dict[str, Any]:
    """Compute variant `variant`'s masks on the prepared model and write the mask set; return its manifest.

    `params` are the rule's (asrprune.plan: seed, schedules, calib_utts, batch_size, calib_seed); a
    method that needs the Fisher reads `fisher_path`, one that needs activations `calib_path`.
    """
    from safetensors.torch import load_file

    from asrprune.io import read_split
    from asrprune.models.load import generation_prompt_ids, load_model, read_model_manifest

    model, processor = load_model(model_dir)
    base_manifest = read_model_manifest(model_dir)
    spec = Variant.parse(variant)
    context = methods.PruneContext(seed=int(params.get("seed", 0)))
    if spec.schedule is not None:
        context.schedule = schedules.resolve_schedule(spec.schedule, params.get("schedules"))
    if spec.needs_fisher:
        context.fisher = load_file(str(fisher_path))
    if spec.needs_activations:
        context.activation_norms = activations.calibration_norms(
            model, processor, read_split(calib_path), target_tensors(model, spec.target),
            n_utts=int(params["calib_utts"]), batch_size=int(params["batch_size"]),
            seed=int(params.get("calib_seed", 0)), prompt_ids=generation_prompt_ids(model),
        )

    mask_dict = methods.variant_masks(model, spec, context)
    matched = context.notes.get("matched")
    manifest = masks.build_manifest(
        model, mask_dict, variant=variant, method=spec.method,
        target=None if matched else spec.target,
        sparsity_requested=matched["pruned"] / matched["pool_numel"] if matched else spec.sparsity,
        base_manifest=base_manifest, extra={**context.notes, **({"matched_to": spec.schedule} if matched else {})},
    )
    written = masks.save_mask_set(mask_dict, manifest, out_dir)
    log.info("%s: %d tensors, overall sparsity %.4f, %d mask bytes",
             variant, len(mask_dict), written["overall"]["all_params"]["sparsity"], written["mask_bytes"])
    return written
