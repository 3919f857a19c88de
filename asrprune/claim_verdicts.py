"""A claims table from per-utterance scores: each claim (asrprune.claims) on every model and set or
pool, its paired effect ΔWER = WER(variant) − WER(reference) on the same utterances with a 95 %
paired bootstrap interval, and its verdicts.

The resampling unit is the source prompt (the score files' `prompt_id`): a prompt's rows in every
set of a pool are resampled, and sign-flipped, together (asrprune.stats). A claim is judged on the
raw WER or, with `measure: bounded`, on each utterance's errors capped at its reference length (a
looping variant's raw WER measures the decoding cap). The deciding rows form the policy's family
and get, beside the unadjusted verdict, one from a Bonferroni interval at level 1 − alpha/m
(`verdict_adjusted`). Other rows are descriptive. `ranks_damage` is decided with the variants as
the sample: a permutation test of ρ over the variants that did not collapse (``COLLAPSE_SHARE``),
collapsed variants listed apart; the prompt-resampled interval of ρ over all variants (which holds
the variants fixed) is reported too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr

from asrprune.claims import Claim, Policy, deciding_row, resolve_sets, verdict
from asrprune.stats import bootstrap_ci, bounded_errors, corpus_rate, n_units, paired_effect

# A variant collapsed on a set when at least this share of its utterances ran away (looped or hit the
# token limit): its raw WER then measures the decoding cap (docs/method.md, "Statistics").
COLLAPSE_SHARE = 0.10
# Exact permutation test over variants up to this many orderings; seeded random orderings beyond.
_MAX_EXACT_PERMUTATIONS = 50_000
_RANDOM_PERMUTATIONS = 20_000
CLAIM_COLUMNS = [
    "claim", "model", "dataset", "pooled", "sets", "variant", "reference", "decides", "outcome", "threshold",
    "n_utts", "n_ref_words", "wer_reference", "wer_variant", "wer_variant_ci_low", "wer_variant_ci_high",
    "effect_abs", "effect_rel", "ci_low", "ci_high", "p_value", "verdict", "paper", "paper_effect", "sentence",
    # added by issue 20 (docs/outputs.md): unit, collapse, bounded measure, variants-as-sample, multiplicity
    "resampling_unit", "n_units", "n_runaway_reference", "n_runaway_variant", "measure",
    "wer_reference_bounded", "wer_variant_bounded", "effect_bounded", "ci_low_bounded", "ci_high_bounded",
    "p_value_bounded", "ci_bound", "verdict_basis", "rho_variants", "p_variants", "n_variants", "collapsed_variants",
    "family_size", "level_adjusted", "ci_low_adjusted", "ci_high_adjusted", "p_adjusted", "verdict_adjusted",
]


def _errors(scores: pd.DataFrame) -> np.ndarray:
    return (scores["substitutions"] + scores["deletions"] + scores["insertions"]).to_numpy()


def _runaways(scores: pd.DataFrame) -> int:
    return int(scores["runaway"].sum()) if "runaway" in scores else 0


def collapsed(scores: pd.DataFrame) -> bool:
    """True when at least COLLAPSE_SHARE of the rows ran away (looped, or hit the token limit)."""
    return len(scores) > 0 and _runaways(scores) >= COLLAPSE_SHARE * len(scores)


def _groups(*frames: pd.DataFrame) -> np.ndarray | None:
    """The prompt ids the frames share (the resampling unit), or None when a frame has none."""
    if not all("prompt_id" in f for f in frames):
        return None
    ids = frames[0]["prompt_id"].astype(str).to_numpy()
    for f in frames[1:]:
        if not np.array_equal(ids, f["prompt_id"].astype(str).to_numpy()):
            raise ValueError("paired score files disagree on the prompt ids of the same utterances")
    return ids


def _pooled(frames: dict[str, pd.DataFrame], sets: list[str]) -> pd.DataFrame:
    """The utterances of several sets as one, each keyed by (set, id), in a fixed order.

    The prompt ids stay as they are: a prompt's degraded copies in several sets are one unit.
    """
    parts = [frames[s].assign(dataset=s) for s in sets]
    return pd.concat(parts, ignore_index=True).sort_values(["dataset", "id"], kind="stable").reset_index(drop=True)


def delta_row(
    claim: Claim, model: str, name: str, sets: list[str], var: pd.DataFrame, ref: pd.DataFrame, samples: int, seed: int
) -> dict[str, Any]:
    """The paired effect of one claim on one set (or pool) of one model, raw and bounded, prompts resampled."""
    if list(var["id"]) != list(ref["id"]) or (
        "dataset" in var and list(var["dataset"]) != list(ref["dataset"])
    ):
        raise ValueError(f"claim {claim.id}, {model}/{name}: {claim.variant} and {claim.reference} scored different utterances")
    groups = _groups(ref, var)
    ev, er, words = _errors(var), _errors(ref), var["n_ref_words"].to_numpy()
    bv, br = bounded_errors(ev, words), bounded_errors(er, words)
    wer_v, wer_r = corpus_rate(ev, words), corpus_rate(er, words)
    raw = paired_effect(ev, er, words, samples=samples, seed=seed, groups=groups)
    bounded = paired_effect(bv, br, words, samples=samples, seed=seed, groups=groups)
    v_low, v_high = bootstrap_ci(ev, words, samples, seed, groups=groups)
    effect = wer_v - wer_r
    row = {
        "claim": claim.id, "model": model, "dataset": name, "pooled": len(sets) > 1 or name != sets[0],
        "sets": ",".join(sets), "variant": claim.variant, "reference": claim.reference, "outcome": claim.outcome,
        "threshold": claim.threshold, "n_utts": len(var), "n_ref_words": int(words.sum()),
        "wer_reference": wer_r, "wer_variant": wer_v, "wer_variant_ci_low": v_low, "wer_variant_ci_high": v_high,
        "effect_abs": effect, "effect_rel": effect / wer_r if wer_r else float("nan"),
        "ci_low": raw.low, "ci_high": raw.high, "p_value": raw.p,
        "resampling_unit": "utterance" if groups is None else "prompt", "n_units": raw.n_units,
        "n_runaway_reference": _runaways(ref), "n_runaway_variant": _runaways(var), "measure": claim.measure,
        "wer_reference_bounded": corpus_rate(br, words), "wer_variant_bounded": corpus_rate(bv, words),
        "effect_bounded": corpus_rate(bv, words) - corpus_rate(br, words),
        "ci_low_bounded": bounded.low, "ci_high_bounded": bounded.high, "p_value_bounded": bounded.p,
        "rho_variants": np.nan, "p_variants": np.nan, "n_variants": np.nan, "collapsed_variants": "",
    }
    decision, basis = _decide(claim, row, (raw, bounded), (v_low, v_high))
    row.update(verdict=decision, verdict_basis=basis,
               ci_bound=(bounded if claim.measure == "bounded" else raw).bound and claim.outcome != "collapses")
    return row


def _decide(claim: Claim, row: dict[str, Any], effects, variant_ci, level_note: str = "") -> tuple[str, str]:
    """(verdict, basis) of a delta row from the interval on the claim's measure."""
    raw, bounded = effects
    measure = "bounded WER" if claim.measure == "bounded" else "WER"
    if claim.outcome == "collapses":
        low, high = variant_ci
        return verdict("collapses", claim.threshold, low, high), f"interval of the variant's {measure}{level_note}"
    eff = bounded if claim.measure == "bounded" else raw
    decision = verdict(claim.outcome, claim.threshold, eff.low, eff.high)
    if eff.bound:
        basis = (f"no prompt changed: rule-of-three bound ±{100 * eff.high:.2f} points on {eff.n_units} prompts"
                 + ("" if decision != "inconclusive" else " does not decide"))
    else:
        basis = f"interval of Δ{measure}{level_note}"
    return decision, basis


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of `a` with `b`; 0 where a row is constant (no ranking)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1), 0.0)


def variant_permutation_test(damage: np.ndarray, measured: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """(ρ, p greater, p less): Spearman ρ of damage vs measured over variants, and its permutation p-values.

    The variants are the sample: under the null, the predicted damage carries no information about
    the measured order, so every assignment of the damages to the variants is equally likely. Exact
    over all orderings up to _MAX_EXACT_PERMUTATIONS (the identity included), otherwise
    _RANDOM_PERMUTATIONS seeded orderings with p = (count + 1) / (N + 1).
    """
    from itertools import permutations
    from math import factorial

    n = len(damage)
    if n < 3:
        return float("nan"), float("nan"), float("nan")
    rd, rm = rankdata(damage), rankdata(measured)
    rho = float(_rowwise_pearson(rm[None, :], rd[None, :])[0])
    if factorial(n) <= _MAX_EXACT_PERMUTATIONS:
        perms = np.array(list(permutations(range(n))))
        rhos = _rowwise_pearson(rm[perms], rd[None, :])
        eps = 1e-12
        return rho, float((rhos >= rho - eps).mean()), float((rhos <= rho + eps).mean())
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((_RANDOM_PERMUTATIONS, n)), axis=1)
    rhos = _rowwise_pearson(rm[perms], rd[None, :])
    eps = 1e-12
    big = (int((rhos >= rho - eps).sum()) + 1) / (_RANDOM_PERMUTATIONS + 1)
    small = (int((rhos <= rho + eps).sum()) + 1) / (_RANDOM_PERMUTATIONS + 1)
    return rho, big, small


def _rank_verdict(p_greater: float, p_less: float, alpha: float) -> str:
    if not (np.isfinite(p_greater) and np.isfinite(p_less)):
        return "inconclusive"
    return "supported" if p_greater <= alpha else "contradicted" if p_less <= alpha else "inconclusive"


def rank_row(
    claim: Claim, model: str, name: str, sets: list[str], frames: dict[str, pd.DataFrame], predicted: dict[str, float],
    samples: int, seed: int, alpha: float = 0.05,
) -> dict[str, Any] | None:
    """Spearman ρ of predicted damage vs measured ΔWER over the pruned variants.

    Reported two ways: ρ over every variant with a prompt-resampled interval (`effect_abs`, `ci_*`;
    the variants are held fixed, so it says nothing about other variants), and ρ over the variants
    that did not collapse with a permutation test over them (`rho_variants`, `p_variants`), which
    decides. Collapsed variants (``collapsed``) are listed in `collapsed_variants`.
    """
    variants = sorted(v for v in predicted if v != "baseline" and v in frames)
    if len(variants) < 3 or "baseline" not in frames:
        return None
    base = frames["baseline"]
    groups = _groups(base, *(frames[v] for v in variants))
    words = base["n_ref_words"].to_numpy()
    deltas = np.stack([_errors(frames[v]) - _errors(base) for v in variants])  # [variants, utts]
    damage = np.array([predicted[v] for v in variants])
    total = max(int(words.sum()), 1)
    rho = float(spearmanr(damage, deltas.sum(axis=1) / total).statistic)
    # prompts resampled: sum each variant's differences and the words within a prompt first
    if groups is not None:
        from asrprune.stats import unit_codes

        codes = unit_codes(groups)
        k = codes.max() + 1
        unit_deltas = np.stack([np.bincount(codes, weights=d, minlength=k) for d in deltas])
        unit_words = np.bincount(codes, weights=words, minlength=k)
    else:
        unit_deltas, unit_words = deltas, words
    idx = np.random.default_rng(seed).integers(0, len(unit_words), size=(samples, len(unit_words)))
    # every resample at once: ΔWER per variant, then Spearman as Pearson on (average) ranks
    measured = np.stack([unit_deltas[:, row].sum(axis=1) for row in idx]) / np.maximum(unit_words[idx].sum(axis=1), 1)[:, None]
    rhos = _rowwise_pearson(rankdata(measured, axis=1), rankdata(damage)[None, :])
    low, high = (np.quantile(rhos, [0.025, 0.975]) if samples else (np.nan, np.nan))
    # the variants as the sample, collapsed variants apart
    calm = [i for i, v in enumerate(variants) if not collapsed(frames[v])]
    fallen = [v for i, v in enumerate(variants) if i not in calm]
    # on the claim's measure (bounded: a variant near collapse weighs no more than its words)
    cap = (lambda e: bounded_errors(e, words)) if claim.measure == "bounded" else (lambda e: e)
    m_delta = np.stack([cap(_errors(frames[v])) - cap(_errors(base)) for v in variants])
    measured_calm = m_delta[calm].sum(axis=1) / total
    rho_v, p_greater, p_less = variant_permutation_test(damage[calm], measured_calm, seed)
    return {
        "claim": claim.id, "model": model, "dataset": name, "pooled": len(sets) > 1 or name != sets[0],
        "sets": ",".join(sets), "variant": f"{len(variants)} pruned variants", "reference": "baseline",
        "outcome": claim.outcome, "threshold": 0.0, "n_utts": len(words), "n_ref_words": int(words.sum()),
        "wer_reference": np.nan, "wer_variant": np.nan, "wer_variant_ci_low": np.nan, "wer_variant_ci_high": np.nan,
        "effect_abs": rho, "effect_rel": np.nan, "ci_low": float(low), "ci_high": float(high), "p_value": np.nan,
        "verdict": _rank_verdict(p_greater, p_less, alpha),
        "resampling_unit": "utterance" if groups is None else "prompt", "n_units": n_units(groups, len(words)),
        "n_runaway_reference": _runaways(base), "n_runaway_variant": int(sum(_runaways(frames[v]) for v in variants)),
        "measure": claim.measure, "wer_reference_bounded": np.nan, "wer_variant_bounded": np.nan, "effect_bounded": np.nan,
        "ci_low_bounded": np.nan, "ci_high_bounded": np.nan, "p_value_bounded": np.nan, "ci_bound": False,
        "verdict_basis": f"permutation test over {len(calm)} variants (one-sided, alpha {alpha:g}); "
        f"{len(fallen)} collapsed apart",
        "rho_variants": rho_v, "p_variants": p_greater, "n_variants": len(calm), "collapsed_variants": ",".join(fallen),
        "_p_less": p_less,
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
    policy: Policy | None = None,
) -> pd.DataFrame:
    """Every claim × model × set (or pool) whose variants were run; `decides` marks the verdict row.

    The deciding rows are the family of `policy`: each also gets an adjusted interval, p-value and
    verdict (``adjust``); the other rows are descriptive (adjusted columns empty).
    """
    policy = policy or Policy()
    models = sorted({m for m, _, _ in scores})
    rows: list[dict[str, Any]] = []
    family: list[tuple[dict[str, Any], Claim, Any]] = []  # deciding rows and what recomputes them
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
                    row = rank_row(claim, model, name, sets, frames, pred, samples, seed, policy.alpha)
                    data = None
                else:
                    var, ref = frame(claim.variant, sets), frame(claim.reference, sets)
                    row = None if var is None or ref is None else delta_row(claim, model, name, sets, var, ref, samples, seed)
                    data = (var, ref)
                if row is not None:
                    out.append((row, data))
            if out:
                decides = deciding_row(claim, [r["dataset"] for r, _ in out])
                for r, data in out:
                    r.update(decides=r["dataset"] == decides, paper=claim.paper, paper_effect=claim.paper_effect,
                             sentence=claim.sentence)
                    if r["decides"]:
                        family.append((r, claim, data))
                rows += [r for r, _ in out]
    for r in rows:
        r.update(family_size=np.nan, level_adjusted=np.nan, ci_low_adjusted=np.nan, ci_high_adjusted=np.nan,
                 p_adjusted=np.nan, verdict_adjusted="")
    m = len(family)
    for r, claim, data in family:
        r.update(adjust(r, claim, data, m, policy, samples, seed))
    for r in rows:
        r.pop("_p_less", None)
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def adjusted_samples(samples: int, level: float) -> int:
    """Bootstrap draws for an interval at `level`: enough that each tail holds about 20 draws."""
    return max(samples, int(np.ceil(20 / ((1 - level) / 2)))) if samples else 0


def adjust(row: dict[str, Any], claim: Claim, data, m: int, policy: Policy, samples: int, seed: int) -> dict[str, Any]:
    """The adjusted columns of one deciding row: level 1 − alpha/m (Bonferroni), or the row itself under `none`."""
    if policy.method == "none":
        level = 1 - policy.alpha
    else:
        level = 1 - policy.alpha / max(m, 1)
    out: dict[str, Any] = {"family_size": m, "level_adjusted": level}
    if claim.outcome == "ranks_damage":
        p = row["p_variants"]
        scale = 1 if policy.method == "none" else m
        out.update(p_adjusted=min(1.0, p * scale) if np.isfinite(p) else np.nan,
                   verdict_adjusted=_rank_verdict(p, row["_p_less"], 1 - level))
        return out
    p = row["p_value_bounded"] if claim.measure == "bounded" else row["p_value"]
    out["p_adjusted"] = min(1.0, p * (1 if policy.method == "none" else m)) if np.isfinite(p) else np.nan
    var, ref = data
    groups = _groups(ref, var)
    ev, er, words = _errors(var), _errors(ref), var["n_ref_words"].to_numpy()
    draws = adjusted_samples(samples, level)
    if claim.outcome == "collapses":
        errors = bounded_errors(ev, words) if claim.measure == "bounded" else ev
        low, high = bootstrap_ci(errors, words, draws, seed, level=level, groups=groups)
        out.update(ci_low_adjusted=low, ci_high_adjusted=high,
                   verdict_adjusted=verdict("collapses", claim.threshold, low, high))
        return out
    if claim.measure == "bounded":
        ev, er = bounded_errors(ev, words), bounded_errors(er, words)
    eff = paired_effect(ev, er, words, samples=draws, seed=seed, level=level, groups=groups)
    out.update(ci_low_adjusted=eff.low, ci_high_adjusted=eff.high,
               verdict_adjusted=verdict(claim.outcome, claim.threshold, eff.low, eff.high))
    return out
