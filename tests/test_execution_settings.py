"""Settings that cannot change a number rerun no job: threads, cluster resources, the encoder cache."""

from __future__ import annotations

from collections import Counter

import pytest
from test_workflow import TINY, planned_jobs, write_config


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
def test_an_execution_change_reruns_nothing(tiny_run, tmp_path, edit):
    assert planned_jobs(tiny_run, write_config(tmp_path, "execution.yaml", edit)) == Counter()


@pytest.mark.workflow
def test_a_backend_change_reruns_decoding_because_it_is_recorded(tiny_run, tmp_path):
    jobs = planned_jobs(tiny_run, write_config(tmp_path, "backend.yaml", lambda c: c["decoding"].update(backend="generate")))
    assert jobs["decode"] == 9 and jobs["prune"] == 0 and jobs["sensitivity"] == 0
