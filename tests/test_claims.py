"""Claims as data: the verdict logic (every verdict reachable, threshold and interval edges), pooling,
damage ranking, and the shipped claims file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from asrprune import claim_verdicts as V
from asrprune import claims as C
from asrprune.variants import Variant

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "outcome,threshold,low,high,expected",
    [
        ("improves", 0.0, -0.03, -0.01, "supported"),
        ("improves", 0.0, 0.01, 0.03, "contradicted"),
        ("improves", 0.0, -0.01, 0.01, "inconclusive"),
        ("improves", 0.0, -0.02, 0.0, "inconclusive"),  # touching zero is not a clear gain
        ("improves", 0.0, 0.0, 0.0, "contradicted"),  # identical systems: no gain at all
        ("improves", 0.01, -0.03, -0.011, "supported"),
        ("improves", 0.01, -0.03, -0.01, "inconclusive"),  # the edge of the threshold is not past it
        ("degrades", 0.01, 0.011, 0.05, "supported"),
        ("degrades", 0.01, 0.01, 0.05, "inconclusive"),
        ("degrades", 0.01, -0.02, 0.01, "contradicted"),
        ("degrades", 0.01, 0.0, 0.02, "inconclusive"),
        ("neutral", 0.02, -0.019, 0.019, "supported"),
        ("neutral", 0.02, -0.02, 0.01, "inconclusive"),
        ("neutral", 0.02, 0.02, 0.05, "contradicted"),
        ("neutral", 0.02, -0.05, -0.02, "contradicted"),
        ("neutral", 0.02, -0.05, 0.05, "inconclusive"),
        ("collapses", 0.30, 0.31, 0.6, "supported"),
        ("collapses", 0.30, 0.1, 0.30, "contradicted"),
        ("collapses", 0.30, 0.25, 0.35, "inconclusive"),
        ("ranks_damage", 0.0, 0.2, 0.9, "supported"),
        ("ranks_damage", 0.0, -0.5, 0.0, "contradicted"),
        ("ranks_damage", 0.0, -0.2, 0.6, "inconclusive"),
        ("improves", 0.0, float("nan"), float("nan"), "inconclusive"),
    ],
)
def test_verdicts_at_and_around_the_threshold(outcome, threshold, low, high, expected):
    assert C.verdict(outcome, threshold, low, high) == expected


def test_every_verdict_is_reachable_for_every_outcome():
    for outcome in C.OUTCOMES:
        t = 0.02
        got = {C.verdict(outcome, t, lo, hi) for lo, hi in [(-1, -0.5), (0.5, 1), (-1, 1), (-0.01, 0.01), (0.025, 0.03)]}
        assert got == set(C.VERDICTS), outcome


def test_a_reversed_interval_and_an_unknown_outcome_are_errors():
    with pytest.raises(ValueError, match="low > high"):
        C.verdict("improves", 0.0, 0.1, -0.1)
    with pytest.raises(ValueError, match="'better'"):
        C.verdict("better", 0.0, -0.1, 0.1)


def scores(errors, words, ids=None):
    """A per-utterance score frame with all errors as substitutions."""
    n = len(errors)
    ids = ids or [f"u{i:03d}" for i in range(n)]
    return pd.DataFrame({"id": ids, "substitutions": errors, "deletions": [0] * n, "insertions": [0] * n,
                         "n_ref_words": words})


def synthetic(effect_per_utt, n=200, seed=0, sets=("a", "b")):
    """Baseline with ~10 % WER; the variant adds `effect_per_utt` errors to a random half of utterances."""
    rng = np.random.default_rng(seed)
    out = {}
    for s in sets:
        words = rng.integers(5, 15, n)
        base = rng.binomial(words, 0.1)
        var = np.clip(base + effect_per_utt * rng.integers(0, 2, n), 0, None)
        out[("m", "baseline", s)] = scores(base.tolist(), words.tolist())
        out[("m", "v", s)] = scores(var.tolist(), words.tolist())
    return out


def claim(outcome, points=0.0, **kw):
    spec = {"claims": [{"id": "X", "variant": "v", "expect": outcome if outcome == "improves" and not points else {outcome: points}, **kw}]}
    return C.parse_claims(spec)[0]


def test_a_clearly_better_variant_supports_improves_and_pools_the_sets():
    table = V.evaluate_claims(claim("improves", datasets=["pool", "a"], decide_on=["pool"]), {"pool": ["a", "b"]},
                              synthetic(-1), ["a", "b"], samples=500)
    pooled = table[table["dataset"] == "pool"].iloc[0]
    assert pooled["decides"] and pooled["pooled"] and pooled["sets"] == "a,b"
    assert pooled["verdict"] == "supported" and pooled["ci_high"] < 0
    single = table[table["dataset"] == "a"].iloc[0]
    assert pooled["n_utts"] == 2 * single["n_utts"]
    assert not single["decides"]
    # the pooled effect is the corpus difference over both sets, not a mean of the two
    data = synthetic(-1)
    err = lambda f: (f["substitutions"]).sum()  # noqa: E731
    words = sum(data[("m", "baseline", s)]["n_ref_words"].sum() for s in "ab")
    expected = sum(err(data[("m", "v", s)]) - err(data[("m", "baseline", s)]) for s in "ab") / words
    assert pooled["effect_abs"] == pytest.approx(expected)


def test_identical_systems_get_a_bound_not_a_zero_width_interval():
    """No utterance changed: the interval is the rule-of-three bound (≈3 of the prompts changing by their
    words), so a tight "within ±1" is not supported on no evidence, and a wider margin is."""
    same = synthetic(0)
    tight = V.evaluate_claims(claim("neutral", 1.0), {}, same, ["a", "b"], samples=200)
    assert set(tight["verdict"]) == {"inconclusive"}
    assert tight["ci_bound"].all() and (tight["ci_low"] < 0).all() and (tight["ci_high"] > 0.01).all()
    assert tight["verdict_basis"].str.contains("no prompt changed: rule-of-three bound").all()
    wide = V.evaluate_claims(claim("neutral", 3.0), {}, same, ["a", "b"], samples=200)
    assert set(wide["verdict"]) == {"supported"}
    improves = V.evaluate_claims(claim("improves"), {}, same, ["a", "b"], samples=200)
    assert set(improves["verdict"]) == {"inconclusive"}  # no change does not rule out a small gain
    # no listed set present: every test set and their pool, the pool decides
    assert list(improves["dataset"]) == ["a", "b", C.ALL_SETS]
    assert list(improves["decides"]) == [False, False, True]


def test_a_worse_variant_degrades_and_collapses_reads_the_variants_own_wer():
    worse = synthetic(3)
    deg = V.evaluate_claims(claim("degrades", 1.0), {}, worse, ["a"], samples=300)
    assert deg.iloc[0]["verdict"] == "supported"
    col = V.evaluate_claims(claim("collapses", 20.0), {}, worse, ["a"], samples=300)
    row = col.iloc[0]
    assert row["wer_variant_ci_low"] > 0.20 and row["verdict"] == "supported"
    high_bar = V.evaluate_claims(claim("collapses", 90.0), {}, worse, ["a"], samples=300)
    assert high_bar.iloc[0]["verdict"] == "contradicted"


def test_unpaired_utterances_are_refused():
    data = synthetic(0, sets=("a",))
    data[("m", "v", "a")] = data[("m", "v", "a")].assign(id=[f"x{i:03d}" for i in range(200)])
    with pytest.raises(ValueError, match="different utterances"):
        V.evaluate_claims(claim("improves"), {}, data, ["a"], samples=10)


def test_claims_whose_variant_was_not_run_are_left_out():
    table = V.evaluate_claims(claim("improves", variant="not-run"), {}, synthetic(-1), ["a"], samples=10)
    assert table.empty and list(table.columns) == V.CLAIM_COLUMNS


def test_damage_ranking_follows_the_predicted_order():
    rng = np.random.default_rng(1)
    n, words = 300, rng.integers(5, 15, 300)
    base = rng.binomial(words, 0.1)
    data = {("m", "baseline", "a"): scores(base.tolist(), words.tolist())}
    predicted = []
    for k, extra in enumerate([0.0, 0.05, 0.1, 0.2, 0.4]):
        errs = base + rng.binomial(words, extra)
        data[("m", f"v{k}", "a")] = scores(errs.tolist(), words.tolist())
        predicted.append({"model": "m", "variant": f"v{k}", "predicted_damage": float(k)})
    spec = {"claims": [{"id": "R", "expect": "ranks_damage"}]}
    agree = V.evaluate_claims(C.parse_claims(spec)[0], {}, data, ["a"], pd.DataFrame(predicted), samples=300)
    assert agree.iloc[0]["effect_abs"] == pytest.approx(1.0) and agree.iloc[0]["verdict"] == "supported"
    reverse = pd.DataFrame(predicted).assign(predicted_damage=lambda d: -d["predicted_damage"])
    disagree = V.evaluate_claims(C.parse_claims(spec)[0], {}, data, ["a"], reverse, samples=300)
    assert disagree.iloc[0]["verdict"] == "contradicted"


@pytest.mark.parametrize(
    "entry,needle",
    [
        ({"id": "A", "variant": "v", "expect": "better"}, r"'better'.*improves"),
        ({"id": "A", "expect": "improves"}, "needs a `variant`"),
        ({"id": "A", "variant": "v", "expect": {"neutral": 0}}, "margin > 0"),
        ({"id": "A", "variant": "v", "expect": {"degrades": -1}}, ">= 0"),
        ({"id": "A", "variant": "v", "expect": "improves", "datasetz": ["a"]}, "unknown keys"),
    ],
)
def test_bad_claims_are_named(entry, needle):
    with pytest.raises(ValueError, match=needle):
        C.parse_claims({"claims": [entry]})
    with pytest.raises(ValueError, match="duplicate claim id 'A'"):
        C.parse_claims({"claims": [{"id": "A", "variant": "v", "expect": "improves"}] * 2})


def test_the_shipped_claims_name_real_variants_and_pools():
    from asrprune.claims_file import load_claims_file

    claims, pools = load_claims_file(REPO / "config/claims.yaml")
    assert {c.id for c in claims} >= {f"C{i}" for i in range(1, 11)}
    for c in claims:
        for v in filter(None, (c.variant, c.reference)):
            Variant.parse(v)  # a typo in a variant id fails here, not after the study ran
        for name in c.decide_on:
            assert name in c.datasets, (c.id, name)
    from asrprune.strict_yaml import load_yaml

    from asrprune.claims import resolve_sets

    # the study decides every claim on one of its own decide_on sets or pools, never on a fallback
    study = load_yaml(REPO / "config/study.yaml")
    tests = [n for n, spec in study["datasets"].items() if spec.get("role", "test") == "test"]
    for c in claims:
        if c.outcome != "ranks_damage":
            present = [name for name, _ in resolve_sets(c, pools, tests)]
            assert any(name in present for name in c.decide_on), (c.id, c.decide_on, present)


def test_the_claims_file_is_found_from_another_working_directory(tmp_path, monkeypatch):
    from asrprune import plan

    monkeypatch.chdir(tmp_path)
    assert plan.claims_file({"claims": "config/claims.yaml"}, str(REPO)) == str(REPO / "config/claims.yaml")
    (tmp_path / "mine.yaml").write_text("claims: []\n")
    assert plan.claims_file({"claims": "mine.yaml"}, str(REPO)) == "mine.yaml"  # the user's own, where they run
    assert plan.claims_file({"claims": ""}, str(REPO)) == ""


def test_the_findings_document_is_made_from_the_table_and_regenerates_identically(tmp_path):
    from asrprune.findings import TIMING_HEADING
    from asrprune.stages.findings import write_findings

    data = synthetic(-1)
    data.update({("m2", v, s): f for (_, v, s), f in synthetic(2, seed=5).items()})
    table = V.evaluate_claims(claim("improves", datasets=["pool"], decide_on=["pool"]), {"pool": ["a", "b"]}, data,
                              ["a", "b"], samples=200)
    claims_path = tmp_path / "claims.parquet"
    table.to_parquet(claims_path)
    wer = pd.DataFrame([{"model": "m", "variant": "baseline", "dataset": "a", "wer": 0.1, "n_ref_words": 100,
                         "versions": '{"torch": "x"}', "decode_num_beams": 1, "decode_batch_size": 8,
                         "decode_language": "en", "normalizer": "whisper_english"}])
    wer_path = tmp_path / "wer.parquet"
    wer.to_parquet(wer_path)
    bench = tmp_path / "benchmarks" / "decode" / "m" / "v"
    bench.mkdir(parents=True)
    (bench / "a.tsv").write_text("s\th:m:s\tmax_rss\tcpu_time\n12.5\t0:00:12\t800\t11.0\n")
    texts = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        texts.append(write_findings(claims_path, wer_path, tmp_path / "benchmarks", out / "findings.md",
                                    out / "findings_claims.csv", out / "findings_effects.png",
                                    config_hash="abc", config_name="study"))
        assert (out / "findings_effects.png").stat().st_size > 0
    assert texts[0].split(TIMING_HEADING)[0] == texts[1].split(TIMING_HEADING)[0]
    text = texts[0]
    m1 = table[(table["model"] == "m") & table["decides"]].iloc[0]
    m2 = table[(table["model"] == "m2") & table["decides"]].iloc[0]
    assert m1["verdict"] == "supported" and m2["verdict"] == "contradicted"
    assert f"{100 * m1['effect_abs']:+.2f} [{100 * m1['ci_low']:+.2f}, {100 * m1['ci_high']:+.2f}] **supported**" in text
    assert "**contradicted**" in text and "config hash `abc`" in text
    assert "| decode | " in text.split(TIMING_HEADING)[1]  # job minutes per rule


# --------------------------------------------------------------------------------------------
# Issue 20: prompts as the unit, runaways, the bounded measure, the family-wise policy


def with_prompts(data, copies_share=True):
    """Give every frame prompt ids: the same utterance index in every set is the same prompt (degraded copies)."""
    out = {}
    for key, f in data.items():
        prompts = [f"p{i % 50:03d}" for i in range(len(f))] if copies_share else list(f["id"])
        out[key] = f.assign(prompt_id=prompts)
    return out


def test_a_pool_resamples_prompts_across_its_sets():
    data = with_prompts(synthetic(-1))
    table = V.evaluate_claims(claim("improves", datasets=["pool", "a"], decide_on=["pool"]), {"pool": ["a", "b"]},
                              data, ["a", "b"], samples=300)
    pooled = table[table["dataset"] == "pool"].iloc[0]
    single = table[table["dataset"] == "a"].iloc[0]
    assert pooled["resampling_unit"] == "prompt" and pooled["n_units"] == 50 and pooled["n_utts"] == 400
    assert single["n_units"] == 50
    # the same rows without prompt ids: every row its own unit, and a narrower (overconfident) interval
    rows = V.evaluate_claims(claim("improves", datasets=["pool"]), {"pool": ["a", "b"]}, synthetic(-1), ["a", "b"],
                             samples=300).iloc[0]
    assert rows["resampling_unit"] == "utterance" and rows["n_units"] == 400
    assert rows["effect_abs"] == pytest.approx(pooled["effect_abs"])


def collapsed_pair(n=120, runaway_share=0.5, seed=3):
    """A baseline and a variant that loops on a share of utterances, running them to a token cap of ~140 words."""
    rng = np.random.default_rng(seed)
    words = rng.integers(5, 15, n)
    base = rng.binomial(words, 0.1)
    loops = rng.random(n) < runaway_share
    var = np.where(loops, 140, base)
    f = lambda e, r: scores(e.tolist(), words.tolist()).assign(runaway=r)  # noqa: E731
    return {("m", "baseline", "a"): f(base, np.zeros(n, bool)), ("m", "v", "a"): f(var, loops)}, int(loops.sum())


def test_a_collapsed_variant_is_decided_on_the_bounded_measure_with_runaways_counted():
    data, loops = collapsed_pair()
    raw = V.evaluate_claims(claim("degrades", 20.0), {}, data, ["a"], samples=300).iloc[0]
    bounded = V.evaluate_claims(claim("degrades", 20.0, measure="bounded"), {}, data, ["a"], samples=300).iloc[0]
    assert raw["n_runaway_variant"] == loops and raw["n_runaway_reference"] == 0
    assert raw["wer_variant"] > 5  # the raw WER measures the token cap
    assert bounded["wer_variant_bounded"] <= 1 and bounded["effect_bounded"] < 1
    assert bounded["ci_high_bounded"] < raw["ci_low"]  # bounded: no longer the cap's size
    assert bounded["measure"] == "bounded" and bounded["verdict"] == "supported"
    assert "bounded WER" in bounded["verdict_basis"]
    # the bounded columns are the same in both rows; only the deciding measure differs
    assert raw["effect_bounded"] == pytest.approx(bounded["effect_bounded"])


def test_the_deciding_rows_form_the_family_and_get_a_wider_interval():
    data = synthetic(-1)
    claims = C.parse_claims({"claims": [
        {"id": "A", "variant": "v", "expect": "improves", "datasets": ["pool", "a", "b"], "decide_on": ["pool"]},
        {"id": "B", "variant": "v", "expect": {"neutral": 50.0}, "datasets": ["pool", "a"], "decide_on": ["pool"]},
    ]})[0]
    table = V.evaluate_claims(claims, {"pool": ["a", "b"]}, data, ["a", "b"], samples=300,
                              policy=C.Policy("bonferroni", 0.05, "deciding"))
    deciding = table[table["decides"]]
    assert (deciding["family_size"] == 2).all() and np.allclose(deciding["level_adjusted"], 0.975)
    assert (deciding["ci_low_adjusted"] < deciding["ci_low"]).all() and (deciding["ci_high_adjusted"] > deciding["ci_high"]).all()
    assert set(deciding["verdict_adjusted"]) <= set(C.VERDICTS)
    assert (table.loc[~table["decides"], "verdict_adjusted"] == "").all()  # per-set rows: descriptive
    assert np.allclose(deciding["p_adjusted"], np.minimum(1, 2 * deciding["p_value"]))
    none = V.evaluate_claims(claims, {"pool": ["a", "b"]}, data, ["a", "b"], samples=300, policy=C.Policy("none"))
    d = none[none["decides"]]
    assert list(d["verdict_adjusted"]) == list(d["verdict"])


@pytest.mark.parametrize(
    "policy,needle",
    [
        ({"method": "holm-ish"}, "method 'holm-ish'"),
        ({"alpha": 1.5}, "alpha 1.5"),
        ({"alpha": True}, "alpha True"),
        ({"family": "everything"}, "family 'everything'"),
        ({"method": "bonferroni", "level": 0.9}, "unknown keys"),
        ("holm", "expected a mapping"),
    ],
)
def test_a_bad_policy_is_named(policy, needle):
    with pytest.raises(ValueError, match=needle):
        C.parse_claims({"multiplicity": policy, "claims": [{"id": "A", "variant": "v", "expect": "improves"}]})


def test_a_bad_measure_is_named():
    with pytest.raises(ValueError, match="measure 'capped'"):
        C.parse_claims({"claims": [{"id": "A", "variant": "v", "expect": "improves", "measure": "capped"}]})


def test_the_shipped_claims_declare_a_policy_and_decide_collapsed_comparisons_bounded():
    from asrprune.claims_file import load_claims_file, load_policy

    claims = {c.id: c for c in load_claims_file(REPO / "config/claims.yaml")[0]}
    assert load_policy(REPO / "config/claims.yaml") == C.Policy("bonferroni", 0.05, "deciding")
    assert {cid for cid, c in claims.items() if c.measure == "bounded"} >= {"C7", "C9", "C9b", "C6"}
    assert claims["C6"].outcome == "degrades" and claims["C6"].reference == "baseline"


def test_damage_ranking_over_variants_sets_collapsed_variants_apart():
    rng = np.random.default_rng(1)
    n, words = 300, rng.integers(5, 15, 300)
    base = rng.binomial(words, 0.1)
    calm = np.zeros(n, bool)
    data = {("m", "baseline", "a"): scores(base.tolist(), words.tolist()).assign(runaway=calm)}
    predicted = []
    for k, extra in enumerate([0.0, 0.05, 0.1, 0.2, 0.4]):
        data[("m", f"v{k}", "a")] = scores((base + rng.binomial(words, extra)).tolist(), words.tolist()).assign(runaway=calm)
        predicted.append({"model": "m", "variant": f"v{k}", "predicted_damage": float(k)})
    # a variant that loops on half its utterances, with the lowest predicted damage: it would break the ranking
    loops = np.arange(n) % 2 == 0
    data[("m", "vx", "a")] = scores(np.where(loops, 140, base).tolist(), words.tolist()).assign(runaway=loops)
    predicted.append({"model": "m", "variant": "vx", "predicted_damage": -1.0})
    row = V.evaluate_claims(C.parse_claims({"claims": [{"id": "R", "expect": "ranks_damage"}]})[0], {}, data, ["a"],
                            pd.DataFrame(predicted), samples=200).iloc[0]
    assert row["collapsed_variants"] == "vx" and row["n_variants"] == 5
    assert row["rho_variants"] == pytest.approx(1.0)
    assert row["p_variants"] == pytest.approx(1 / 120)  # exact: one of 5! orderings reaches ρ = 1
    assert row["verdict"] == "supported" and "permutation test over 5 variants" in row["verdict_basis"]
    assert V.variant_permutation_test(np.arange(4.0), np.arange(4.0)[::-1])[2] == pytest.approx(1 / 24)


def test_the_findings_show_adjusted_verdicts_and_what_changed(tmp_path):
    from asrprune.findings import changed_markdown, claims_markdown, policy_markdown

    data = with_prompts(synthetic(-1))
    table = V.evaluate_claims(claim("improves", datasets=["pool", "a"], decide_on=["pool"]), {"pool": ["a", "b"]}, data,
                              ["a", "b"], samples=200)
    text = claims_markdown(table, ["m"])
    assert "(adj. " in text and "| 50 prompts |" in text
    per_set = text.split("descriptive")[1]
    assert "**" not in per_set  # per-set rows are not bold
    assert "over the family of the 1 deciding verdicts" in policy_markdown(table, {"method": "bonferroni", "alpha": 0.05})
    previous = table.drop(columns=["sentence"]).assign(verdict="contradicted", ci_low=-0.001, ci_high=0.0)
    changed = changed_markdown(table, previous)
    assert changed.startswith("1 deciding verdicts changed") and "contradicted → **supported**" in changed
    assert "prompts resampled (50 prompts of 400 rows)" in changed
    assert "nothing to compare" in changed_markdown(table, None)


def test_the_findings_stage_reads_the_policy_and_a_frozen_previous_table(tmp_path):
    from asrprune.stages.findings import write_findings

    data = with_prompts(synthetic(-1))
    table = V.evaluate_claims(claim("improves", datasets=["pool"], decide_on=["pool"]), {"pool": ["a", "b"]}, data,
                              ["a", "b"], samples=200)
    table.to_parquet(tmp_path / "claims.parquet")
    pd.DataFrame([{"model": "m", "variant": "baseline", "dataset": "a", "wer": 0.1, "n_ref_words": 100,
                   "versions": "{}", "decode_num_beams": 1, "decode_batch_size": 8, "decode_language": "en",
                   "normalizer": "whisper_english"}]).to_parquet(tmp_path / "wer.parquet")
    previous = tmp_path / "previous.csv"
    table.drop(columns=["sentence"]).assign(verdict="inconclusive").to_csv(previous, index=False)
    claims_yaml = tmp_path / "claims.yaml"
    claims_yaml.write_text("multiplicity: {method: bonferroni, alpha: 0.1, family: deciding}\nclaims: []\n")
    out = tmp_path / "out"
    text = write_findings(tmp_path / "claims.parquet", tmp_path / "wer.parquet", tmp_path / "none", out / "findings.md",
                          out / "findings_claims.csv", out / "findings_effects.png", config_hash="h", config_name="t",
                          previous_path=previous, claims_file=claims_yaml)
    assert "`bonferroni` at alpha 0.1" in text
    changed = text.split("## Verdicts that changed")[1]
    assert "inconclusive → **supported**" in changed
    assert pd.read_csv(out / "findings_claims.csv")["verdict_adjusted"].notna().any()
