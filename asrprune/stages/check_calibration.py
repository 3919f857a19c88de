"""check_calibration: the calibration set shares nothing with a test set (asrprune.datasets.overlap)."""

from __future__ import annotations

from asrprune.datasets.overlap import check_calibration_overlap
from asrprune.job import Job


def run(job: Job) -> None:
    check_calibration_overlap(
        job.params["calibration"],
        job.input.calib,
        dict(zip(job.params["tests"], job.input.as_list("tests"))),
        job.output[0],
        allow=bool(job.params["allow_overlap"]),
    )
