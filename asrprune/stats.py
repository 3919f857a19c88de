"""Utterance-level statistics of a corpus WER: bootstrap intervals, and a paired test against a baseline.

- ``bootstrap_ci``: percentile interval of one system's corpus error rate, utterances resampled.
- ``paired_permutation_test``: the significance test of two systems on the same utterances, a paired
  randomization (sign-flip) test on per-utterance error counts, the matched-pairs practice of ASR
  evaluation (e.g. NIST's MAPSSWE and the randomization tests of sc_stats/SCTK).
- ``paired_bootstrap``: what the WER table reads: the sign-flip p-value and the paired bootstrap
  percentile interval of the corpus WER difference.
"""

from __future__ import annotations

import numpy as np

# Sign patterns drawn per chunk of the randomization test (bounds memory: chunk x n_utts int8).
_CHUNK = 4096


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


def _check_paired(errors_a: np.ndarray, errors_b: np.ndarray, totals: np.ndarray) -> None:
    if len(errors_a) != len(errors_b) or len(errors_a) != len(totals):
        raise ValueError(
            f"a paired test needs the same utterances: got {len(errors_a)}, {len(errors_b)} and {len(totals)} rows"
        )


def paired_permutation_test(
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    totals: np.ndarray,
    samples: int = 1000,
    seed: int = 0,
) -> float:
    """Two-sided p-value of a paired randomization (sign-flip) test that A and B have the same corpus WER.

    The statistic is the corpus WER difference ``sum(a_i - b_i) / sum(n_i)`` over the utterances.
    Under the null hypothesis the two systems' outputs on an utterance are exchangeable, so each
    per-utterance error difference ``d_i = a_i - b_i`` is as likely to have come out with the other
    sign. The test draws ``samples`` random sign patterns (seeded) and counts those whose
    ``|sum(s_i d_i)|`` reaches the observed ``|sum(d_i)|`` (the denominator is the same for every
    pattern, and the sums are integers, so the comparison is exact).

    p = (count + 1) / (samples + 1): the observed assignment counts as one of the patterns, which
    keeps the Monte Carlo test valid (P(p <= alpha) <= alpha under the null) and p > 0. When every
    ``d_i`` is 0, every pattern reaches the observed 0 and p = 1 exactly; the same holds whenever the
    observed difference is 0. NaN for no utterances or ``samples == 0``.
    """
    _check_paired(errors_a, errors_b, totals)
    if samples == 0 or len(totals) == 0:
        return float("nan")
    diff = np.asarray(errors_a, dtype=np.int64) - np.asarray(errors_b, dtype=np.int64)
    if not np.array_equal(diff, np.asarray(errors_a) - np.asarray(errors_b)):
        raise ValueError("the paired permutation test needs integer error counts per utterance")
    observed = abs(int(diff.sum()))
    nonzero = diff[diff != 0]  # a zero difference contributes 0 under either sign
    rng = np.random.default_rng(seed)
    count, left = 0, samples
    while left:
        n = min(left, _CHUNK)
        # Draw every utterance's sign (not only the non-zero ones) so the draws, and p, do not
        # depend on which utterances happen to tie.
        signs = rng.integers(0, 2, size=(n, len(diff)), dtype=np.int8)
        flipped = np.where(signs[:, diff != 0] == 1, nonzero, -nonzero).sum(axis=1)
        count += int((np.abs(flipped) >= observed).sum())
        left -= n
    return (count + 1) / (samples + 1)


def paired_bootstrap(
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    totals: np.ndarray,
    samples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """(p-value, interval low, interval high) of WER(A) - WER(B) on the same utterances.

    p is the paired randomization test's (``paired_permutation_test``, same samples and seed); the
    interval is the percentile interval of the corpus WER difference over paired utterance
    resamples (the same resampled utterance sets score both systems).
    """
    _check_paired(errors_a, errors_b, totals)
    if samples == 0 or len(totals) == 0:
        return float("nan"), float("nan"), float("nan")
    p = paired_permutation_test(errors_a, errors_b, totals, samples, seed)
    diff = errors_a - errors_b
    idx = _resample_indices(len(totals), samples, seed)
    deltas = diff[idx].sum(axis=1) / np.maximum(totals[idx].sum(axis=1), 1)
    alpha = (1 - level) / 2
    low, high = np.quantile(deltas, [alpha, 1 - alpha])
    return float(p), float(low), float(high)
