"""link_dataset: results/{name}/data/{dataset}.parquet, a relative link to the data set's store file."""

from __future__ import annotations

import logging

from asrprune.io import link_relative
from asrprune.job import Job

log = logging.getLogger(__name__)


def run(job: Job) -> None:
    link_relative(job.input[0], job.output[0])
    log.info("%s -> %s", job.output[0], job.input[0])
