"""The workflow's stages: one module per rule, each with `run(job)` that reads the job's input files
and writes its output files. Everything below a stage takes and returns values (tensors, tables),
not paths.

Each `scripts/NAME.py` is the same adapter, `run_stage(snakemake, "NAME")` (asrprune.runtime); a
notebook runs a stage the same way with a `Job` built by hand:

    from asrprune.job import Files, Job
    from asrprune.stages import score
    score.run(Job(input=Files("results/default/decode/tiny.en/baseline/ivr.parquet"),
                  output=Files("/tmp/ivr.scores.parquet"), params={"loop_min_repeats": 4}))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asrprune.job import Job

# In the workflow's order (the rule of the same name runs each one).
STAGES = (
    "prepare_model",
    "prepare_dataset",
    "link_dataset",
    "check_calibration",
    "sensitivity",
    "prune",
    "predict_damage",
    "decode",
    "score",
    "aggregate",
    "claims",
    "findings",
    "plots",
    "export",
)


def run(name: str, job: Job) -> None:
    """Run stage `name` (one of STAGES) on `job`."""
    if name not in STAGES:
        raise ValueError(f"stage {name!r}: no such stage; expected one of {list(STAGES)}")
    importlib.import_module(f"{__name__}.{name}").run(job)
