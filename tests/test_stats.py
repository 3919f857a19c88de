"""Bootstrap intervals and the paired significance test behave as statistics should.

Every test here runs the resampling itself (none is answered by a shortcut), and the paired test's
p-value and the intervals are also checked against values computed another way: an exact
enumeration of all sign patterns, and a hand-written bootstrap.
"""

import itertools

import numpy as np
import pytest
from scipy.stats import binom

from asrprune.stats import (
    bootstrap_ci,
    bounded_errors,
    corpus_rate,
    no_change_bound,
    paired_effect,
    paired_permutation_test,
)


def paired_bootstrap(*args, **kwargs) -> tuple[float, float, float]:
    """(p, low, high) of ``paired_effect``: the tuple these tests compare."""
    e = paired_effect(*args, **kwargs)
    return e.p, e.low, e.high


def test_corpus_rate_is_not_a_mean_of_rates():
    assert corpus_rate(np.array([1, 0]), np.array([1, 9])) == 0.1


def test_interval_contains_the_estimate_and_narrows_with_more_data():
    rng = np.random.default_rng(1)
    totals = rng.integers(5, 15, 400)
    errors = rng.binomial(totals, 0.1)
    low, high = bootstrap_ci(errors, totals, 2000, seed=0)
    assert low < corpus_rate(errors, totals) < high
    low_small, high_small = bootstrap_ci(errors[:40], totals[:40], 2000, seed=0)
    assert (high_small - low_small) > 2 * (high - low)
    assert bootstrap_ci(errors, totals, 500, seed=3) == bootstrap_ci(errors, totals, 500, seed=3)


def test_interval_equals_a_hand_written_bootstrap():
    rng = np.random.default_rng(7)
    totals = rng.integers(5, 15, 60)
    errors = rng.binomial(totals, 0.2)
    samples, seed = 300, 11
    draws = np.random.default_rng(seed).integers(0, 60, size=(samples, 60))
    rates = sorted(errors[row].sum() / totals[row].sum() for row in draws)
    assert bootstrap_ci(errors, totals, samples, seed) == pytest.approx(tuple(np.quantile(rates, [0.025, 0.975])))


# --------------------------------------------------------------------------------------------
# The paired randomization (sign-flip) test


def exact_sign_flip_p(diff: np.ndarray) -> float:
    """The exact two-sided p of the sign-flip test: the share of all 2^n sign patterns as extreme."""
    observed = abs(int(diff.sum()))
    hits = sum(abs(int(np.dot(signs, diff))) >= observed for signs in itertools.product((1, -1), repeat=len(diff)))
    return hits / 2 ** len(diff)


def test_identical_systems_give_p_one():
    rng = np.random.default_rng(2)
    totals = rng.integers(5, 15, 300)
    base = rng.binomial(totals, 0.10)
    assert paired_permutation_test(base, base, totals, 2000) == 1.0
    assert paired_bootstrap(base, base, totals, samples=2000)[0] == 1.0
    # Differences that cancel exactly: every sign pattern reaches the observed 0, so p = 1 from the
    # count itself, with no special case for it.
    other = base.copy()
    j = int(np.flatnonzero(base > 0)[0])
    other[j] -= 1
    other[(j + 1) % len(base)] += 1
    assert paired_permutation_test(other, base, totals, 2000) == 1.0


def test_a_clearly_better_system_is_significant():
    rng = np.random.default_rng(2)
    totals = rng.integers(5, 15, 300)
    base = rng.binomial(totals, 0.10)
    worse = base + rng.binomial(totals, 0.05)  # adds errors on top of the same utterances
    p = paired_permutation_test(worse, base, totals, 2000)
    assert p < 0.01
    assert p == 1 / 2001  # no sign pattern reaches it: the smallest p the add-one rule gives
    assert paired_permutation_test(base, worse, totals, 2000) == p  # two-sided
    assert paired_bootstrap(worse, base, totals, samples=2000)[0] == p


def test_p_matches_the_exact_enumeration():
    rng = np.random.default_rng(5)
    for n in (6, 9, 12):
        totals = rng.integers(3, 10, n)
        a, b = rng.binomial(totals, 0.3), rng.binomial(totals, 0.3)
        diff = a - b
        exact = exact_sign_flip_p(diff)
        samples = 40_000
        got = paired_permutation_test(a, b, totals, samples, seed=n)
        # Monte Carlo error: binomial sd of the share of patterns, plus the add-one term
        assert abs(got - exact) < 4 * np.sqrt(exact * (1 - exact) / samples) + 2 / samples, (n, got, exact)


def test_shuffled_errors_are_not_significant_and_the_test_is_seeded():
    rng = np.random.default_rng(2)
    totals = rng.integers(5, 15, 300)
    base = rng.binomial(totals, 0.10)
    shuffled = base.copy()
    swap = rng.permutation(len(base))[:20]
    shuffled[swap] = base[swap[::-1]]
    assert (shuffled != base).any()
    p = paired_permutation_test(shuffled, base, totals, 2000, seed=3)
    assert p > 0.05
    assert paired_permutation_test(shuffled, base, totals, 2000, seed=3) == p
    with pytest.raises(ValueError, match="same utterances"):
        paired_permutation_test(base, base[:-1], totals, 100)
    with pytest.raises(ValueError, match="integer error counts"):
        paired_permutation_test(base + 0.5, base, totals, 100)


def null_pairs(seed: int, n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two systems of equal quality on the same utterances: per utterance, exchangeable error counts.

    Utterances differ in length and difficulty (a per-utterance error rate), as real test sets do.
    """
    rng = np.random.default_rng(seed)
    totals = rng.integers(3, 25, n)
    rate = rng.beta(1.0, 6.0, n)
    return rng.binomial(totals, rate), rng.binomial(totals, rate), totals


def null_rejection_rate(seeds: int, samples: int, alpha: float = 0.05) -> float:
    rejected = sum(paired_permutation_test(*null_pairs(s), samples=samples, seed=s) <= alpha for s in range(seeds))
    return rejected / seeds


def test_type_one_error_is_the_nominal_level():
    """Over many synthetic null pairs the test rejects at 0.05 about 5 % of the time.

    The bounds are the central 99.9 % of Binomial(seeds, 0.05): a valid test that is not
    conservative lands inside them (the measured rate is printed; see the README).
    """
    seeds, alpha = 2000, 0.05
    rate = null_rejection_rate(seeds, samples=999, alpha=alpha)
    low, high = binom.ppf([0.0005, 0.9995], seeds, alpha) / seeds
    print(f"\nsign-flip test: type-I error at {alpha} over {seeds} null seeds = {rate:.4f} (bounds {low:.4f}-{high:.4f})")
    assert low <= rate <= high


def test_paired_interval_brackets_the_observed_difference():
    rng = np.random.default_rng(4)
    totals = rng.integers(5, 15, 300)
    base = rng.binomial(totals, 0.10)
    worse = base + rng.binomial(totals, 0.03)
    p, low, high = paired_bootstrap(worse, base, totals, samples=2000)
    observed = corpus_rate(worse, totals) - corpus_rate(base, totals)
    assert 0 < low < observed < high
    assert p < 0.01
    # the interval is the percentile interval of a hand-written paired bootstrap
    draws = np.random.default_rng(0).integers(0, 300, size=(2000, 300))
    deltas = [(worse[r].sum() - base[r].sum()) / totals[r].sum() for r in draws]
    assert (low, high) == pytest.approx(tuple(np.quantile(deltas, [0.025, 0.975])))


# --------------------------------------------------------------------------------------------
# Prompts as the resampling unit: a simulation with a known truth


def clustered_null(replicate: int, prompts: int = 96, conditions: int = 3, rho: float = 0.35):
    """One null data set shaped like `noisy_ivr`: `prompts` prompts, each under `conditions` degradations.

    The two systems are exchangeable within a prompt (the true ΔWER is 0), but a prompt's error
    differences are correlated across its conditions (correlation ≈ rho): d = round(3 (√ρ u_p +
    √(1−ρ) v_pc)), symmetric in sign per prompt. Returns (errors_a, errors_b, totals, prompt ids).
    """
    rng = np.random.default_rng(10_000 + replicate)
    words = np.repeat(rng.integers(5, 15, prompts), conditions)  # a degraded copy keeps its text
    latent = np.sqrt(rho) * np.repeat(rng.standard_normal(prompts), conditions) + np.sqrt(1 - rho) * rng.standard_normal(
        prompts * conditions
    )
    diff = np.round(3 * latent).astype(np.int64)
    base = rng.binomial(words, 0.15) + 10  # offset: errors stay >= 0 whatever the difference
    return base + diff, base, words, np.repeat(np.arange(prompts), conditions)


def simulate(replicates: int = 400, samples: int = 999, alpha: float = 0.05):
    """Coverage of the 95 % paired interval and size of the sign-flip test, prompt- vs row-level."""
    hits = {"prompt": [0, 0], "row": [0, 0]}  # [covered, rejected]
    for r in range(replicates):
        a, b, words, prompts = clustered_null(r)
        for unit, groups in (("prompt", prompts), ("row", None)):
            p, low, high = paired_bootstrap(a, b, words, samples=samples, seed=r, groups=groups)
            hits[unit][0] += low <= 0.0 <= high
            hits[unit][1] += p <= alpha
    return {u: (c / replicates, k / replicates) for u, (c, k) in hits.items()}


def test_prompt_resampling_holds_coverage_and_size_where_rows_do_not():
    """Known truth ΔWER = 0 on 96 prompts × 3 conditions, within-prompt correlation 0.35.

    The prompt bootstrap covers 0 about 95 % of the time and the prompt sign-flip test rejects
    about 5 %, inside the central 99.9 % of Binomial(replicates, ·) (Monte Carlo error); the
    row-level versions treat the 288 rows as independent and fall outside: coverage too low,
    size too high. The figures are printed (docs/method.md, "Statistics").
    """
    replicates, alpha = 400, 0.05
    got = simulate(replicates, alpha=alpha)
    cov_lo, cov_hi = binom.ppf([0.0005, 0.9995], replicates, 0.95) / replicates
    size_lo, size_hi = binom.ppf([0.0005, 0.9995], replicates, alpha) / replicates
    for unit, (coverage, size) in got.items():
        print(f"\n{unit}-level: coverage of the 95 % interval {coverage:.3f} (MC bounds {cov_lo:.3f}-{cov_hi:.3f}), "
              f"type-I error at {alpha} {size:.3f} (MC bounds {size_lo:.3f}-{size_hi:.3f}), {replicates} replicates")
    assert cov_lo <= got["prompt"][0] <= cov_hi
    assert size_lo <= got["prompt"][1] <= size_hi
    assert got["row"][0] < cov_lo  # the row bootstrap's interval is too narrow
    assert got["row"][1] > size_hi  # the row sign-flip test rejects too often


def test_singleton_prompts_give_the_row_level_numbers_draw_for_draw():
    a, b, words, _ = clustered_null(1)
    ids = [f"u{i:03d}" for i in range(len(words))]
    assert paired_bootstrap(a, b, words, samples=500, seed=2, groups=ids) == paired_bootstrap(a, b, words, samples=500, seed=2)
    assert bootstrap_ci(a, words, 500, seed=2, groups=ids) == bootstrap_ci(a, words, 500, seed=2)


def test_a_prompt_resample_takes_all_rows_of_a_prompt():
    # two prompts, each with rows that only ever appear together: every resampled difference is a
    # ratio of whole-prompt sums, so only three values are possible
    a, b, words = np.array([3, 3, 0, 0]), np.array([0, 0, 0, 0]), np.array([5, 5, 5, 5])
    p, low, high = paired_bootstrap(a, b, words, samples=2000, groups=["x", "x", "y", "y"])
    assert {low, high} <= {0.0, 0.3, 0.6}
    assert paired_permutation_test(a, b, words, 2000, groups=["x", "x", "y", "y"]) > 0.4  # 2 of 4 patterns reach it


def test_no_change_gives_a_rule_of_three_bound_not_a_zero_width_interval():
    words = np.full(100, 10)
    same = np.arange(100) % 4
    e = paired_effect(same, same, words, samples=500)
    assert e.bound and e.p == 1.0
    assert (e.low, e.high) == pytest.approx((-0.02996, 0.02996), abs=1e-4)  # ≈3 of 100 equal prompts
    # grouped: 50 prompts of two rows, so ≈3 of 50 prompts: twice as wide
    grouped = paired_effect(same, same, words, samples=500, groups=np.arange(100) // 2)
    assert grouped.n_units == 50 and grouped.high == pytest.approx(2 * e.high)
    # the longest prompts set the bound
    assert no_change_bound(np.array([50, 10, 10, 10, 10, 10])) == pytest.approx((50 + 10 + 0.996 * 10) / 100, abs=1e-3)


def test_a_collapsed_variant_is_finite_on_the_bounded_measure():
    """A looping decode runs to the token cap: raw errors are bounded by the cap, not the reference."""
    words = np.array([8, 12, 10, 9])
    base = np.array([1, 0, 2, 1])
    looping = np.array([140, 150, 145, 138])  # insertions to the cap
    assert corpus_rate(looping, words) > 1  # raw WER above 100 %: it measures the cap
    capped = bounded_errors(looping, words)
    assert corpus_rate(capped, words) == 1.0 and (capped <= words).all()
    assert corpus_rate(bounded_errors(base, words), words) == corpus_rate(base, words)  # no effect below the cap


def test_the_wer_table_says_which_unit_it_resampled(tmp_path):
    """Grouped score files: the table names `prompt` and counts prompts; old files without prompt ids: `utterance`."""
    import pandas as pd

    from asrprune.tables import build_table

    rng = np.random.default_rng(0)
    n = 60
    words = rng.integers(5, 15, n)
    paths = []
    for variant, extra, prompts in (("baseline", 0, True), ("v", 2, True)):
        errors = rng.binomial(words, 0.1) + extra * (np.arange(n) % 3 == 0)
        loops = np.arange(n) < 10 if variant == "v" else np.zeros(n, bool)
        errors = np.where(loops, 140, errors)
        frame = pd.DataFrame({
            "id": [f"u{i:03d}" for i in range(n)], "prompt_id": [f"p{i // 3:03d}" for i in range(n)],
            "n_ref_words": words, "substitutions": errors, "deletions": 0, "insertions": 0, "n_ref_chars": 5 * words,
            "char_errors": errors, "n_ref_words_basic": words, "word_errors_basic": errors, "looping": loops,
            "hit_token_limit": False, "runaway": loops, "duration_s": 1.0, "decode_s": 0.1, "language": "en"})
        path = tmp_path / "m" / variant / "a.parquet"
        path.parent.mkdir(parents=True)
        (frame if prompts else frame.drop(columns="prompt_id")).to_parquet(path)
        paths.append(str(path))
    from asrprune.io import parse_result_path

    def frames():
        return {parse_result_path(p): pd.read_parquet(p) for p in paths}

    table = build_table(frames(), {}, samples=200, seed=0, decoding={}, config_hash="x").set_index("variant")
    assert list(table["resampling_unit"]) == ["prompt", "prompt"] and list(table["n_units"]) == [20, 20]
    assert table.loc["v", "wer"] > 1 and table.loc["v", "wer_bounded"] <= 1  # raw kept, bounded beside it
    assert table.loc["v", "n_runaway"] == 10 and not table.loc["v", "delta_ci_bound"]
    pd.read_parquet(paths[1]).drop(columns="prompt_id").to_parquet(paths[1])
    pd.read_parquet(paths[0]).drop(columns="prompt_id").to_parquet(paths[0])
    old = build_table(frames(), {}, samples=200, seed=0, decoding={}, config_hash="x").set_index("variant")
    assert list(old["resampling_unit"]) == ["utterance", "utterance"] and list(old["n_units"]) == [60, 60]
