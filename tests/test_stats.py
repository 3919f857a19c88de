"""Bootstrap intervals and the paired test behave as statistics should."""

import numpy as np

from asrprune.stats import bootstrap_ci, corpus_rate, paired_bootstrap_p


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


def test_paired_test_separates_a_real_difference_from_noise():
    rng = np.random.default_rng(2)
    totals = rng.integers(5, 15, 300)
    base = rng.binomial(totals, 0.10)
    worse = base + rng.binomial(totals, 0.05)  # adds errors on top of the same utterances
    assert paired_bootstrap_p(worse, base, totals, 2000) < 0.01
    assert paired_bootstrap_p(base, base, totals, 2000) == 1.0
    shuffled = base.copy()
    swap = rng.permutation(len(base))[:20]
    shuffled[swap] = base[swap[::-1]]
    assert paired_bootstrap_p(shuffled, base, totals, 2000) > 0.05


def test_paired_interval_brackets_the_observed_difference():
    from asrprune.stats import paired_bootstrap

    rng = np.random.default_rng(4)
    totals = rng.integers(5, 15, 300)
    base = rng.binomial(totals, 0.10)
    worse = base + rng.binomial(totals, 0.03)
    p, low, high = paired_bootstrap(worse, base, totals, 2000)
    observed = corpus_rate(worse, totals) - corpus_rate(base, totals)
    assert 0 < low < observed < high
    assert p < 0.01
