"""score: per-utterance alignment counts of one decode (asrprune.metrics)."""

from __future__ import annotations

import logging

import pandas as pd

from asrprune.io import write_parquet
from asrprune.metrics import score_frame
from asrprune.job import Job

log = logging.getLogger(__name__)


def run(job: Job) -> None:
    decoded = job.input[0]
    scores = score_frame(pd.read_parquet(decoded), job.params["loop_min_repeats"], where=decoded)
    write_parquet(scores, job.output[0])
    log.info("scored %d utterances", len(scores))
