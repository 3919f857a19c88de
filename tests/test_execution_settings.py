"""Settings that cannot change a number rerun no job: threads, cluster resources, the encoder cache."""

from __future__ import annotations

from collections import Counter

import pytest
from test_workflow import edited_experiment, planned_jobs


@pytest.mark.workflow
@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.setdefault("execution", {}).update(encoder_cache_mb=64),
        lambda c: c.setdefault("execution", {}).update(encoder_cache=False),
        lambda c: c["resources"].update(decode={"threads": 2, "mem_mb": 9000, "runtime": 30}),
        lambda c: c["resources"].update(default={"threads": 2, "gres": "gpu:1"}),
    ],
    ids=["cache-size", "cache-off", "decode-threads-and-memory", "default-threads-and-gres"],
)
def test_an_execution_change_reruns_nothing(tiny_run, edit):
    with edited_experiment(tiny_run, edit) as config:
        assert planned_jobs(tiny_run, config) == Counter()


@pytest.mark.workflow
def test_a_backend_change_reruns_decoding_because_it_is_recorded(tiny_run):
    with edited_experiment(tiny_run, lambda c: c["decoding"].update(backend="generate")) as config:
        jobs = planned_jobs(tiny_run, config)
    assert jobs["decode"] == 9 and jobs["prune"] == 0 and jobs["sensitivity"] == 0
