"""Snakemake adapter: compute one variant's mask set (asrprune.methods) and write it (asrprune.masks)."""

import json
import logging
from pathlib import Path

from safetensors.torch import load_file

from asrprune import masks, methods
from asrprune.activations import calibration_norms
from asrprune.models import load_model
from asrprune.variants import Variant

from asrprune.runtime import setup_script

smk = snakemake  # noqa: F821 (injected by Snakemake)
setup_script(smk.log[0], smk.threads)
# The rule passes its settings as one dict `params.prune`; plain params work too.
params = dict(getattr(smk.params, "prune", None) or smk.params.items())

model, processor = load_model(smk.input.model)
base_manifest = json.loads((Path(smk.input.model) / "manifest.json").read_text())
spec = Variant.parse(smk.wildcards.variant)
context = methods.PruneContext(seed=int(params.get("seed", 0)))
if spec.schedule is not None:
    context.schedule = methods.resolve_schedule(spec.schedule, params.get("schedules"))
if spec.needs_fisher:
    context.fisher = load_file(smk.input.fisher)
if spec.needs_activations:
    names = methods.target_tensors(model, spec.target)
    # the calibration seed picks the same utterances as the sensitivity stage's Fisher
    calib_seed = params.get("calib_seed", smk.config.get("calibration", {}).get("seed", 0))
    context.activation_norms = calibration_norms(
        model, processor, smk.input.calib, names, int(params["calib_utts"]), int(params["batch_size"]), int(calib_seed)
    )

mask_dict = methods.variant_masks(model, spec, context)
matched = context.notes.get("matched")
manifest = masks.build_manifest(
    model, mask_dict, variant=smk.wildcards.variant, method=spec.method,
    target=None if matched else spec.target,
    sparsity_requested=matched["pruned"] / matched["pool_numel"] if matched else spec.sparsity,
    base_manifest=base_manifest, extra={**context.notes, **({"matched_to": spec.schedule} if matched else {})},
)
written = masks.save_mask_set(mask_dict, manifest, smk.output.masks)
logging.info("%s: %d tensors, overall sparsity %.4f, %d mask bytes",
             smk.wildcards.variant, len(mask_dict), written["overall"]["all_params"]["sparsity"], written["mask_bytes"])
