"""export: a standalone Hugging Face directory of one pruned variant (asrprune.masks.export_variant)."""

from __future__ import annotations

import logging

from asrprune.masks import export_variant
from asrprune.models.load import load_model, read_model_manifest
from asrprune.job import Job

log = logging.getLogger(__name__)


def run(job: Job) -> None:
    model, processor = load_model(job.input.model)
    manifest = export_variant(model, processor, job.input.masks, read_model_manifest(job.input.model), job.output[0])
    log.info("exported %s (%d nonzero parameters) to %s", manifest["name"], manifest["params_nonzero"], job.output[0])
