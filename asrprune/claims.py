"""Claims as data: each claim of the paper is a declarative comparison, and what it means.

A claim names a variant, what it is compared with (the baseline or another variant), the test sets
(or named pools of them) and an expected outcome; the claims file also declares a family-wise policy
(`multiplicity:`, ``Policy``). Here: parsing and checking them, the sets a claim reads in a config
(`resolve_sets`, `deciding_row`), and the decision rule (`verdict`): `supported` when the whole
interval lies on the claimed side of the decision threshold, `contradicted` when it lies wholly on
the other side, `inconclusive` when it straddles it. asrprune.claim_verdicts turns them into rows.

Outcomes (thresholds are given in WER points in the claims file, stored as fractions):
- `improves` (threshold x ≥ 0): ΔWER < −x;
- `neutral` (x > 0): −x < ΔWER < x;
- `degrades` (x ≥ 0): ΔWER > x;
- `collapses` (y): the variant's own WER > y (its bootstrap interval, not the difference);
- `ranks_damage`: Spearman ρ between the predicted (OBD) damage and the measured ΔWER of the
  pruned variants is > 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

OUTCOMES = ("improves", "neutral", "degrades", "collapses", "ranks_damage")
VERDICTS = ("supported", "contradicted", "inconclusive")
ALL_SETS = "all_sets"  # the pool of every test set, when a claim names none of the config's sets
MEASURES = ("raw", "bounded")
MULTIPLICITY_METHODS = ("bonferroni", "none")
FAMILIES = ("deciding",)

@dataclass(frozen=True)
class Claim:
    """One claim: what is compared, where, and what outcome would support it."""

    id: str
    sentence: str
    outcome: str
    threshold: float  # a fraction (points / 100); unused for ranks_damage
    variant: str | None = None  # None for ranks_damage (every pruned variant)
    reference: str = "baseline"
    datasets: tuple[str, ...] = ()  # test sets or pool names; () = every test set
    decide_on: tuple[str, ...] = ()  # the first of these present gives the claim's verdict
    paper: str = ""  # the paper's number, as text
    paper_effect: float | None = None  # the paper's ΔWER on whisper-small, in points (for the size plot)
    measure: str = "raw"  # "bounded": decided on errors capped at the reference length (collapsed variants)


@dataclass(frozen=True)
class Policy:
    """The family-wise policy of the claims file (`multiplicity:`), declared before any verdict.

    `bonferroni`: each of the m rows of the family is also judged on its interval at level
    1 − alpha/m (a permutation p at alpha/m for `ranks_damage`), so the chance that any adjusted
    verdict of the family rests on an interval that misses its true effect is at most alpha.
    `none`: the adjusted verdict is the unadjusted one.
    """

    method: str = "bonferroni"
    alpha: float = 0.05
    family: str = "deciding"  # the deciding row of every claim × model


def _fail(where: str, message: str) -> None:
    raise ValueError(f"{where}: {message}")


def parse_claims(spec: dict[str, Any], where: str = "claims") -> tuple[list[Claim], dict[str, list[str]]]:
    """(claims, pools) from a claims mapping `{pools: {name: [sets]}, claims: [...]}`; errors name the entry."""
    if not isinstance(spec, dict) or "claims" not in spec:
        _fail(where, "expected a mapping with a `claims:` list (and optionally `pools:`)")
    pools = {str(k): [str(s) for s in v] for k, v in (spec.get("pools") or {}).items()}
    claims, seen = [], set()
    for i, entry in enumerate(spec["claims"]):
        at = f"{where}, claim {i + 1}"
        if not isinstance(entry, dict):
            _fail(at, f"expected a mapping, got {entry!r}")
        unknown = set(entry) - {"id", "sentence", "variant", "reference", "datasets", "decide_on", "expect", "paper",
                                "paper_effect", "measure", "reason"}
        if unknown:
            _fail(at, f"unknown keys {sorted(unknown)}")
        cid = str(entry.get("id") or _fail(at, "missing `id`"))
        if cid in seen:
            _fail(at, f"duplicate claim id {cid!r}")
        seen.add(cid)
        expect = entry.get("expect") or _fail(at, "missing `expect`")
        outcome, points = (expect, 0.0) if isinstance(expect, str) else next(iter(expect.items()))
        if outcome not in OUTCOMES:
            _fail(f"{where}, claim {cid}", f"expected outcome {outcome!r}: expected one of {list(OUTCOMES)}")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            _fail(f"{where}, claim {cid}", f"threshold of {outcome!r} must be a number of WER points >= 0, got {points!r}")
        if outcome == "neutral" and points == 0:
            _fail(f"{where}, claim {cid}", "`neutral` needs a margin > 0 points")
        measure = str(entry.get("measure", "raw"))
        if measure not in MEASURES:
            _fail(f"{where}, claim {cid}", f"measure {measure!r}: expected one of {list(MEASURES)}")
        variant = entry.get("variant")
        if outcome != "ranks_damage" and not variant:
            _fail(f"{where}, claim {cid}", f"outcome {outcome!r} needs a `variant`")
        claims.append(
            Claim(
                id=cid,
                sentence=str(entry.get("sentence", "")),
                outcome=outcome,
                threshold=float(points) / 100,
                variant=variant,
                reference=str(entry.get("reference", "baseline")),
                datasets=tuple(entry.get("datasets") or ()),
                decide_on=tuple(entry.get("decide_on") or ()),
                paper=str(entry.get("paper", "")),
                paper_effect=None if entry.get("paper_effect") is None else float(entry["paper_effect"]),
                measure=measure,
            )
        )
    parse_policy(spec, where)  # a bad policy fails with the claims, before any verdict
    return claims, pools


def parse_policy(spec: dict[str, Any], where: str = "claims") -> Policy:
    """The `multiplicity:` mapping of a claims file ({method, alpha, family}); absent: Bonferroni at 0.05."""
    raw = spec.get("multiplicity") if isinstance(spec, dict) else None
    if raw is None:
        return Policy()
    at = f"{where}, multiplicity"
    if not isinstance(raw, dict):
        _fail(at, f"expected a mapping {{method, alpha, family}}, got {raw!r}")
    unknown = set(raw) - {"method", "alpha", "family"}
    if unknown:
        _fail(at, f"unknown keys {sorted(unknown)}; expected method, alpha, family")
    default = Policy()
    method, family = str(raw.get("method", default.method)), str(raw.get("family", default.family))
    alpha = raw.get("alpha", default.alpha)
    if method not in MULTIPLICITY_METHODS:
        _fail(at, f"method {method!r}: expected one of {list(MULTIPLICITY_METHODS)}")
    if family not in FAMILIES:
        _fail(at, f"family {family!r}: expected one of {list(FAMILIES)}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        _fail(at, f"alpha {alpha!r}: expected a number between 0 and 1")
    return Policy(method=method, alpha=float(alpha), family=family)


def verdict(outcome: str, threshold: float, low: float, high: float) -> str:
    """Supported / contradicted / inconclusive from an interval [low, high] and the decision threshold."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if low > high:
        raise ValueError(f"interval [{low}, {high}] has low > high")
    if outcome == "improves":
        return "supported" if high < -threshold else "contradicted" if low >= -threshold else "inconclusive"
    if outcome == "degrades":
        return "supported" if low > threshold else "contradicted" if high <= threshold else "inconclusive"
    if outcome == "neutral":
        if -threshold < low and high < threshold:
            return "supported"
        return "contradicted" if low >= threshold or high <= -threshold else "inconclusive"
    if outcome in ("collapses", "ranks_damage"):
        return "supported" if low > threshold else "contradicted" if high <= threshold else "inconclusive"
    raise ValueError(f"unknown outcome {outcome!r}: expected one of {list(OUTCOMES)}")


def resolve_sets(claim: Claim, pools: dict[str, list[str]], test_sets: list[str]) -> list[tuple[str, list[str]]]:
    """(row name, member sets) for every set or pool of the claim present in this config.

    A pool counts when all its members are test sets here. A claim that names nothing present is
    evaluated on every test set and on their pool (`all_sets`), so any grid gets a verdict.
    """
    rows = []
    for name in claim.datasets:
        members = pools.get(name, [name])
        if all(m in test_sets for m in members):
            rows.append((name, members))
    if not rows:
        rows = [(s, [s]) for s in test_sets] + ([(ALL_SETS, list(test_sets))] if len(test_sets) > 1 else [])
    return rows


def deciding_row(claim: Claim, names: list[str]) -> str:
    """The row whose verdict is the claim's: the first `decide_on` present, else the widest pool."""
    for name in claim.decide_on:
        if name in names:
            return name
    return ALL_SETS if ALL_SETS in names else names[0]


