"""prepare_model: results/store/models/{model}-{key}/, a standalone float32 HF Whisper directory + manifest.json."""

from __future__ import annotations

import logging

from asrprune.models.prepare import prepare_model
from asrprune.job import Job

log = logging.getLogger(__name__)


def run(job: Job) -> None:
    manifest = prepare_model(job.wildcards["model"], dict(job.params["spec"]), job.output.model_dir)
    log.info("model %s ready: %d parameters, weights %s", manifest["name"], manifest["n_params"], manifest["weights_sha256"])
