"""Utterance-level bootstrap: confidence intervals of a corpus WER and a paired test against a baseline."""

from __future__ import annotations

import numpy as np


def _resample_indices(n: int, samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def corpus_rate(errors: np.ndarray, totals: np.ndarray) -> float:
    """Corpus-level error rate: all errors over all reference units (not a mean of per-utterance rates)."""
    total = totals.sum()
    return float(errors.sum() / total) if total else float("nan")


def bootstrap_ci(
    errors: np.ndarray, totals: np.ndarray, samples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the corpus error rate over utterances resampled with replacement."""
    if samples == 0 or len(errors) == 0:
        return float("nan"), float("nan")
    idx = _resample_indices(len(errors), samples, seed)
    rates = errors[idx].sum(axis=1) / np.maximum(totals[idx].sum(axis=1), 1)
    alpha = (1 - level) / 2
    low, high = np.quantile(rates, [alpha, 1 - alpha])
    return float(low), float(high)


def paired_bootstrap_p(
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    totals: np.ndarray,
    samples: int = 1000,
    seed: int = 0,
) -> float:
    """Two-sided p-value that systems A and B have the same corpus WER on the same utterances."""
    return paired_bootstrap(errors_a, errors_b, totals, samples, seed)[0]


def paired_bootstrap(
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    totals: np.ndarray,
    samples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """(p-value, interval low, interval high) of WER(A) - WER(B) over paired utterance resamples.

    The same resampled utterance sets score both systems (paired); p is twice the smaller tail
    of the resampled differences around zero, so it is 1 when the systems agree everywhere.
    """
    if len(errors_a) != len(errors_b) or len(errors_a) != len(totals):
        raise ValueError(
            f"paired bootstrap needs the same utterances: got {len(errors_a)}, {len(errors_b)} and {len(totals)} rows"
        )
    if samples == 0 or len(totals) == 0:
        return float("nan"), float("nan"), float("nan")
    diff = errors_a - errors_b
    if not diff.any():
        return 1.0, 0.0, 0.0
    idx = _resample_indices(len(totals), samples, seed)
    deltas = diff[idx].sum(axis=1) / np.maximum(totals[idx].sum(axis=1), 1)
    tail = min((deltas <= 0).mean(), (deltas >= 0).mean())
    alpha = (1 - level) / 2
    low, high = np.quantile(deltas, [alpha, 1 - alpha])
    return float(min(1.0, 2 * tail)), float(low), float(high)
