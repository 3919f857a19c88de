"""Statistics of a corpus WER with the source prompt as the resampling unit.

The rows of a score file are not always independent: one sentence may be read by several voices,
recorded twice, or copied under several degradations (a pool such as `noisy_ivr` holds every
prompt three times). Errors on the rows of one prompt are correlated, so every function here takes
optional `groups` (one key per row, e.g. the prompt id) and resamples or flips whole groups: a
prompt's rows go together. Without `groups` (or when every row is its own group) each row is a unit
and the numbers are the same as a row-level bootstrap, draw for draw (units are taken in the order
of their first row).

- ``bootstrap_ci``: percentile interval of one system's corpus error rate, units resampled.
- ``paired_permutation_test``: the paired randomization (sign-flip) test of two systems on the same
  rows, the matched-pairs practice of ASR evaluation (NIST's MAPSSWE, the randomization tests of
  sc_stats/SCTK), flipping whole units.
- ``paired_effect``: the sign-flip p-value and the paired bootstrap
  percentile interval of the corpus WER difference; where no unit differs at all, the interval is
  the rule-of-three bound (``no_change_bound``), never a zero-width interval.
- ``bounded_errors``: each row's errors capped at its reference length, the error measure that a
  runaway (looping) decode cannot push past 100 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Sign patterns drawn per chunk of the randomization test (bounds memory: chunk x n_units int8).
_CHUNK = 4096


def _resample_indices(n: int, samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def unit_codes(groups) -> np.ndarray:
    """Integer unit codes 0..k-1 of `groups` (one key per row), numbered in order of first appearance."""
    keys = np.asarray(groups)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first, kind="stable"), kind="stable")  # unique-sorted rank -> appearance rank
    return order[inverse.reshape(-1)]


def unit_sums(values: np.ndarray, groups=None) -> np.ndarray:
    """Per-unit sums of `values` (rows summed within a unit); the rows themselves without `groups`."""
    values = np.asarray(values)
    if groups is None:
        return values
    codes = unit_codes(groups)
    if len(codes) != len(values):
        raise ValueError(f"groups has {len(codes)} keys for {len(values)} rows; expected one key per row")
    return np.bincount(codes, weights=values, minlength=codes.max() + 1 if len(codes) else 0).astype(
        values.dtype if np.issubdtype(values.dtype, np.integer) else float
    )


def n_units(groups, n_rows: int) -> int:
    """How many independent units the rows form (the rows themselves without `groups`)."""
    return n_rows if groups is None else int(len(np.unique(np.asarray(groups))))


def corpus_rate(errors: np.ndarray, totals: np.ndarray) -> float:
    """Corpus-level error rate: all errors over all reference units (not a mean of per-utterance rates)."""
    total = totals.sum()
    return float(errors.sum() / total) if total else float("nan")


def bounded_errors(errors: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Each row's errors capped at its reference word count: the bounded error rate is at most 1.

    A decode that loops to the token limit adds insertions up to the decoding cap, so its raw WER
    (and any difference against it) measures the cap; capped, a lost utterance counts as all its
    words wrong and no more.
    """
    return np.minimum(np.asarray(errors), np.asarray(totals))


def bootstrap_ci(
    errors: np.ndarray, totals: np.ndarray, samples: int = 1000, seed: int = 0, level: float = 0.95, groups=None
) -> tuple[float, float]:
    """Percentile interval of the corpus error rate over units (prompts, or rows) resampled with replacement."""
    if samples == 0 or len(errors) == 0:
        return float("nan"), float("nan")
    e, n = unit_sums(errors, groups), unit_sums(totals, groups)
    idx = _resample_indices(len(e), samples, seed)
    rates = e[idx].sum(axis=1) / np.maximum(n[idx].sum(axis=1), 1)
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
    groups=None,
) -> float:
    """Two-sided p-value of a paired randomization (sign-flip) test that A and B have the same corpus WER.

    The statistic is the corpus WER difference ``sum(a_i - b_i) / sum(n_i)``. Under the null
    hypothesis the two systems' outputs are exchangeable within each unit (a prompt with all its
    rows, or a row without `groups`), so each per-unit error difference ``d_u`` is as likely to have
    come out with the other sign. Flipping whole prompts keeps the correlation of a prompt's rows,
    which flipping rows would break (and with it the test's size). The test draws ``samples`` random
    sign patterns (seeded) and counts those whose ``|sum(s_u d_u)|`` reaches the observed
    ``|sum(d_u)|`` (the denominator is the same for every pattern and the sums are integers, so the
    comparison is exact).

    p = (count + 1) / (samples + 1): the observed assignment counts as one of the patterns, which
    keeps the Monte Carlo test valid (P(p <= alpha) <= alpha under the null) and p > 0. When every
    ``d_u`` is 0, every pattern reaches the observed 0 and p = 1 exactly; the same holds whenever the
    observed difference is 0. NaN for no utterances or ``samples == 0``.
    """
    _check_paired(errors_a, errors_b, totals)
    if samples == 0 or len(totals) == 0:
        return float("nan")
    row_diff = np.asarray(errors_a, dtype=np.int64) - np.asarray(errors_b, dtype=np.int64)
    if not np.array_equal(row_diff, np.asarray(errors_a) - np.asarray(errors_b)):
        raise ValueError("the paired permutation test needs integer error counts per utterance")
    diff = unit_sums(row_diff, groups)
    observed = abs(int(diff.sum()))
    nonzero = diff[diff != 0]  # a zero difference contributes 0 under either sign
    rng = np.random.default_rng(seed)
    count, left = 0, samples
    while left:
        n = min(left, _CHUNK)
        # Draw every unit's sign (not only the non-zero ones) so the draws, and p, do not
        # depend on which units happen to tie.
        signs = rng.integers(0, 2, size=(n, len(diff)), dtype=np.int8)
        flipped = np.where(signs[:, diff != 0] == 1, nonzero, -nonzero).sum(axis=1)
        count += int((np.abs(flipped) >= observed).sum())
        left -= n
    return (count + 1) / (samples + 1)


def no_change_bound(totals: np.ndarray, groups=None, level: float = 0.95) -> float:
    """Half-width of the interval of a WER difference when no unit differed at all (rule of three).

    With none of k units changing, the share of units that change is below -ln(1 - level) / k at
    one-sided confidence `level` (3 / k at 95 %: the rule of three), i.e. about 3 units of k. A
    unit that changes moves the bounded error count by at most its reference word count, so the
    difference is bounded by the words of the ~3 longest units over all words (the largest
    change of ~3 units). A zero-width interval would claim the systems agree on every prompt not
    in the set; this bound says what k unchanged prompts can show.
    """
    words = np.sort(unit_sums(np.asarray(totals), groups).astype(float))[::-1]
    total = words.sum()
    if not total:
        return float("nan")
    expected = -np.log(1 - level)  # 2.996 at 95 %
    whole = int(np.floor(expected))
    changed = words[:whole].sum() + (expected - whole) * (words[whole] if whole < len(words) else 0.0)
    return float(min(changed, total) / total)


@dataclass(frozen=True)
class PairedEffect:
    """A paired comparison: the sign-flip p, the interval of the WER difference and how it was made."""

    p: float
    low: float
    high: float
    n_units: int
    bound: bool  # True: no unit differed, [low, high] is the rule-of-three bound (no_change_bound)


def paired_effect(
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    totals: np.ndarray,
    groups=None,  # each row's unit (prompt id); None: every row its own unit
    *,  # the resampling settings, named at every call
    samples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedEffect:
    """WER(A) - WER(B) on the same rows: sign-flip p, paired percentile interval over units, and its kind.

    p is the paired randomization test's (``paired_permutation_test``, same samples and seed, units
    flipped); the interval is the percentile interval of the corpus WER difference over resamples
    of units (the same resampled prompts score both systems, each with all its rows). Where every
    unit's difference is 0 the bootstrap can only return [0, 0]; the interval is then
    ±``no_change_bound`` (``bound`` True).
    """
    _check_paired(errors_a, errors_b, totals)
    k = n_units(groups, len(totals))
    if samples == 0 or len(totals) == 0:
        return PairedEffect(float("nan"), float("nan"), float("nan"), k, False)
    p = paired_permutation_test(errors_a, errors_b, totals, samples, seed, groups=groups)
    diff = unit_sums(np.asarray(errors_a) - np.asarray(errors_b), groups)
    if not np.any(diff):
        b = no_change_bound(totals, groups, level)
        return PairedEffect(float(p), -b, b, k, True)
    words = unit_sums(totals, groups)
    idx = _resample_indices(len(diff), samples, seed)
    deltas = diff[idx].sum(axis=1) / np.maximum(words[idx].sum(axis=1), 1)
    alpha = (1 - level) / 2
    low, high = np.quantile(deltas, [alpha, 1 - alpha])
    return PairedEffect(float(p), float(low), float(high), k, False)
