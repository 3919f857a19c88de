"""Claims as data: each claim of the paper is a declarative comparison turned into a verdict.

A claim names a variant, what it is compared with (the baseline or another variant), the test sets
(or named pools of them) and an expected outcome. For every model and set it gets the paired effect
ΔWER = WER(variant) − WER(reference) on the same utterances, its 95 % paired bootstrap interval and
a verdict (`verdict`): `supported` when the whole interval lies on the claimed side of the decision
threshold, `contradicted` when it lies wholly on the other side, `inconclusive` when it straddles it.

Outcomes (thresholds are given in WER points in the claims file, stored as fractions):
- `improves` (threshold x ≥ 0): ΔWER < −x;
- `neutral` (x > 0): −x < ΔWER < x;
- `degrades` (x ≥ 0): ΔWER > x;
- `collapses` (y): the variant's own WER > y (its bootstrap interval, not the difference);
- `ranks_damage`: Spearman ρ between the predicted (OBD) damage and the measured ΔWER of every
  pruned variant is > 0 (interval from the same utterance resamples for all variants).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr

from asrprune.stats import bootstrap_ci, corpus_rate, paired_bootstrap

OUTCOMES = ("improves", "neutral", "degrades", "collapses", "ranks_damage")
VERDICTS = ("supported", "contradicted", "inconclusive")
ALL_SETS = "all_sets"  # the pool of every test set, when a claim names none of the config's sets
CLAIM_COLUMNS = [
    "claim", "model", "dataset", "pooled", "sets", "variant", "reference", "decides", "outcome", "threshold",
    "n_utts", "n_ref_words", "wer_reference", "wer_variant", "wer_variant_ci_low", "wer_variant_ci_high",
    "effect_abs", "effect_rel", "ci_low", "ci_high", "p_value", "verdict", "paper", "paper_effect", "sentence",
]


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
        unknown = set(entry) - {"id", "sentence", "variant", "reference", "datasets", "decide_on", "expect", "paper", "paper_effect"}
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
            )
        )
    return claims, pools


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


# ------------------------------------------------------------------------------------------------
# Effects from per-utterance scores


def _errors(scores: pd.DataFrame) -> np.ndarray:
    return (scores["substitutions"] + scores["deletions"] + scores["insertions"]).to_numpy()


def _pooled(frames: dict[str, pd.DataFrame], sets: list[str]) -> pd.DataFrame:
    """The utterances of several sets as one, each keyed by (set, id), in a fixed order."""
    parts = [frames[s].assign(dataset=s) for s in sets]
    return pd.concat(parts, ignore_index=True).sort_values(["dataset", "id"], kind="stable").reset_index(drop=True)


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


def delta_row(
    claim: Claim, model: str, name: str, sets: list[str], var: pd.DataFrame, ref: pd.DataFrame, samples: int, seed: int
) -> dict[str, Any]:
    """The paired effect of one claim on one set (or pool) of one model."""
    if list(var["id"]) != list(ref["id"]) or (
        "dataset" in var and list(var["dataset"]) != list(ref["dataset"])
    ):
        raise ValueError(f"claim {claim.id}, {model}/{name}: {claim.variant} and {claim.reference} scored different utterances")
    ev, er, words = _errors(var), _errors(ref), var["n_ref_words"].to_numpy()
    wer_v, wer_r = corpus_rate(ev, words), corpus_rate(er, words)
    p, low, high = paired_bootstrap(ev, er, words, samples, seed)
    v_low, v_high = bootstrap_ci(ev, words, samples, seed)
    effect = wer_v - wer_r
    if claim.outcome == "collapses":
        decision = verdict("collapses", claim.threshold, v_low, v_high)
    elif not ev.any() and not er.any():
        # no error on either side: the interval is [0, 0] whatever the set's size, and no variant
        # could have shown an improvement or a damage there (three error-free utterances read
        # "contradicted")
        decision = "inconclusive"
    else:
        decision = verdict(claim.outcome, claim.threshold, low, high)
    return {
        "claim": claim.id, "model": model, "dataset": name, "pooled": len(sets) > 1 or name != sets[0],
        "sets": ",".join(sets), "variant": claim.variant, "reference": claim.reference, "outcome": claim.outcome,
        "threshold": claim.threshold, "n_utts": len(var), "n_ref_words": int(words.sum()),
        "wer_reference": wer_r, "wer_variant": wer_v, "wer_variant_ci_low": v_low, "wer_variant_ci_high": v_high,
        "effect_abs": effect, "effect_rel": effect / wer_r if wer_r else float("nan"),
        "ci_low": low, "ci_high": high, "p_value": p, "verdict": decision,
    }


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of `a` with `b`; 0 where a row is constant (no ranking)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1), 0.0)


def rank_row(
    claim: Claim, model: str, name: str, sets: list[str], frames: dict[str, pd.DataFrame], predicted: dict[str, float],
    samples: int, seed: int,
) -> dict[str, Any] | None:
    """Spearman ρ of predicted damage vs measured ΔWER over the pruned variants, with a paired interval."""
    variants = sorted(v for v in predicted if v != "baseline" and v in frames)
    if len(variants) < 3 or "baseline" not in frames:
        return None
    base = frames["baseline"]
    words = base["n_ref_words"].to_numpy()
    deltas = np.stack([_errors(frames[v]) - _errors(base) for v in variants])  # [variants, utts]
    damage = np.array([predicted[v] for v in variants])
    total = max(int(words.sum()), 1)
    rho = float(spearmanr(damage, deltas.sum(axis=1) / total).statistic)
    idx = np.random.default_rng(seed).integers(0, len(words), size=(samples, len(words)))
    # every resample at once: ΔWER per variant, then Spearman as Pearson on (average) ranks
    measured = np.stack([deltas[:, row].sum(axis=1) for row in idx]) / np.maximum(words[idx].sum(axis=1), 1)[:, None]
    rhos = _rowwise_pearson(rankdata(measured, axis=1), rankdata(damage)[None, :])
    low, high = (np.quantile(rhos, [0.025, 0.975]) if samples else (np.nan, np.nan))
    return {
        "claim": claim.id, "model": model, "dataset": name, "pooled": len(sets) > 1 or name != sets[0],
        "sets": ",".join(sets), "variant": f"{len(variants)} pruned variants", "reference": "baseline",
        "outcome": claim.outcome, "threshold": 0.0, "n_utts": len(words), "n_ref_words": int(words.sum()),
        "wer_reference": np.nan, "wer_variant": np.nan, "wer_variant_ci_low": np.nan, "wer_variant_ci_high": np.nan,
        "effect_abs": rho, "effect_rel": np.nan, "ci_low": float(low), "ci_high": float(high), "p_value": np.nan,
        "verdict": verdict("ranks_damage", 0.0, float(low), float(high)),
    }


def evaluate_claims(
    claims: list[Claim],
    pools: dict[str, list[str]],
    scores: dict[tuple[str, str, str], pd.DataFrame],
    test_sets: list[str],
    predicted: pd.DataFrame | None = None,
    *,
    samples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Every claim × model × set (or pool) whose variants were run; `decides` marks the verdict row."""
    models = sorted({m for m, _, _ in scores})
    rows: list[dict[str, Any]] = []
    for claim in claims:
        for model in models:
            def frame(variant: str, sets: list[str]) -> pd.DataFrame | None:
                parts = {s: scores.get((model, variant, s)) for s in sets}
                if any(p is None for p in parts.values()):
                    return None
                return _pooled({s: p.sort_values("id") for s, p in parts.items()}, sets)

            out = []
            for name, sets in resolve_sets(claim, pools, test_sets):
                if claim.outcome == "ranks_damage":
                    pred = {} if predicted is None else {
                        str(r.variant): float(r.predicted_damage)
                        for r in predicted[predicted["model"] == model].itertuples() if np.isfinite(r.predicted_damage)
                    }
                    frames = {v: f for v in list(pred) + ["baseline"] if (f := frame(v, sets)) is not None}
                    row = rank_row(claim, model, name, sets, frames, pred, samples, seed)
                else:
                    var, ref = frame(claim.variant, sets), frame(claim.reference, sets)
                    row = None if var is None or ref is None else delta_row(claim, model, name, sets, var, ref, samples, seed)
                if row is not None:
                    out.append(row)
            if out:
                decides = deciding_row(claim, [r["dataset"] for r in out])
                for r in out:
                    r.update(decides=r["dataset"] == decides, paper=claim.paper, paper_effect=claim.paper_effect,
                             sentence=claim.sentence)
                rows += out
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)
