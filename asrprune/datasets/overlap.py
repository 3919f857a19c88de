"""The calibration set must share nothing with a test set: no id, no transcript, no recording.

`sensitivity`, `allocate` and `wanda` tune on the calibration set; if its utterances are also test
utterances, the pruned models are scored on what they were tuned on. The workflow's
`check_calibration` rule runs `check_calibration_overlap` on the built data sets; `aggregate` reads
its verdict, so no table is written over an overlap unless `calibration.allow_overlap: true`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from asrprune.io import write_json

log = logging.getLogger(__name__)
SHOWN = 5  # pairs named per kind of overlap in an error


def _utterances(path: Path, name: str) -> tuple[list[str], list[str], list[str]]:
    """(ids, normalized transcripts, audio sha256) of a data set written by prepare_dataset."""
    from asrprune.metrics import normalize_english

    try:
        table = pq.read_table(path, columns=["id", "text", "audio"])
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable Parquet file ({exc}); expected data set {name!r} written by "
                         "prepare_dataset") from exc
    ids = [str(i) for i in table.column("id").to_pylist()]
    texts = [normalize_english(t) for t in table.column("text").to_pylist()]
    audio = [hashlib.sha256(a).hexdigest() for a in table.column("audio").to_pylist()]
    return ids, texts, audio


def find_overlap(calib: tuple[list[str], list[str], list[str]], test: tuple[list[str], list[str], list[str]]) -> dict[str, list]:
    """Calibration/test pairs with the same id, the same normalized transcript, or the same audio."""
    c_ids, c_texts, c_audio = calib
    t_ids, t_texts, t_audio = test
    test_ids = set(t_ids)
    by_text: dict[str, str] = {}
    by_audio: dict[str, str] = {}
    for i, text, audio in zip(t_ids, t_texts, t_audio):
        if text:
            by_text.setdefault(text, i)
        by_audio.setdefault(audio, i)
    return {
        "same_id": sorted(i for i in c_ids if i in test_ids),
        "same_text": sorted((i, by_text[t], t) for i, t in zip(c_ids, c_texts) if t and t in by_text),
        "same_audio": sorted((i, by_audio[a]) for i, a in zip(c_ids, c_audio) if a in by_audio),
    }


def _describe(calib: str, test: str, found: dict[str, list]) -> str:
    n = len({*found["same_id"], *(p[0] for p in found["same_text"]), *(p[0] for p in found["same_audio"])})
    parts = []
    if found["same_id"]:
        parts.append(f"same id {found['same_id'][:SHOWN]}")
    if found["same_text"]:
        pairs = ", ".join(f"{c!r} ~ {t!r} ({text!r})" for c, t, text in found["same_text"][:SHOWN])
        parts.append(f"same normalized transcript [{pairs}]")
    if found["same_audio"]:
        pairs = ", ".join(f"{c!r} ~ {t!r}" for c, t in found["same_audio"][:SHOWN])
        parts.append(f"same audio [{pairs}]")
    more = f" (first {SHOWN} of each kind shown)" if any(len(v) > SHOWN for v in found.values()) else ""
    return f"calibration set {calib!r} overlaps test set {test!r} in {n} utterance(s): {'; '.join(parts)}{more}"


def check_calibration_overlap(calib_name: str, calib_path: str | Path, tests: Mapping[str, str | Path],
                              out_path: str | Path, *, allow: bool = False) -> dict[str, Any]:
    """Compare the calibration set with every test set; write the verdict to `out_path` (JSON).

    Raises ValueError naming the overlapping ids unless `allow` (then the overlap is logged and
    recorded in the verdict).
    """
    calib = _utterances(Path(calib_path), calib_name)
    report: dict[str, Any] = {"calibration": calib_name, "allow_overlap": bool(allow), "tests": {}}
    problems = []
    for name in sorted(tests):
        found = find_overlap(calib, _utterances(Path(tests[name]), name))
        report["tests"][name] = {
            "same_id": found["same_id"],
            "same_text": [[c, t] for c, t, _ in found["same_text"]],
            "same_audio": [list(p) for p in found["same_audio"]],
        }
        if any(found.values()):
            problems.append(_describe(calib_name, name, found))
    report["overlap"] = bool(problems)
    if problems and not allow:
        raise ValueError("; ".join(problems) + "; expected disjoint sets (pruning tuned on test utterances flatters "
                         "the pruned models); use other utterances for calibration, or set "
                         "calibration.allow_overlap: true to accept the overlap")
    for problem in problems:
        log.warning("%s (accepted: calibration.allow_overlap is true)", problem)
    write_json(report, Path(out_path))
    return report
