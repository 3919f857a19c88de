"""experiment: results/{name}/experiment.json, what defines the experiment and where it came from.

The next run reads it before any job (asrprune.plan.check_experiment_record): another config that
claims the same name with another definition is refused instead of overwriting these results.
"""

from __future__ import annotations

from asrprune.io import write_json
from asrprune.job import Job


def run(job: Job) -> None:
    write_json(
        {
            "name": job.params["name"],
            "sources": list(job.params["sources"]),
            "config_hash": job.params["config_hash"],
            "store": job.params["store"],
            "models": dict(job.params["models"]),
            "datasets": dict(job.params["datasets"]),
        },
        job.output[0],
    )
