"""Scoring: the normalizers, jiwer counts per utterance, and runaway flags."""

import pandas as pd
import pytest

from asrprune.metrics import normalize_basic, normalize_english, repeats_in_loop, score_frame


def test_english_normalizer_drops_the_stray_ellipsis_token():
    assert normalize_english("At the tone, the time will be exactly...") == "at the tone the time will be exactly"


def test_basic_normalizer_lowercases_and_strips_punctuation():
    assert normalize_basic("Hello, World!  Mr. Smith") == "hello world mr smith"


@pytest.mark.parametrize(
    "text,looping",
    [
        ("the the the the", True),
        ("thank you for calling thank you for calling thank you for calling thank you for calling", True),
        ("press one press two press three press four", False),
        ("one two three", False),
    ],
)
def test_loop_detection(text, looping):
    assert repeats_in_loop(text.split(), min_repeats=4) is looping


def _decoded(refs, hyps, limit=None):
    n = len(refs)
    return pd.DataFrame(
        {
            "id": [f"u{i}" for i in range(n)],
            "reference": refs,
            "hypothesis": hyps,
            "duration_s": [1.0] * n,
            "n_tokens": [5] * n,
            "token_limit": [20] * n,
            "hit_token_limit": limit or [False] * n,
            "decode_s": [0.1] * n,
        }
    )


def test_counts_match_a_hand_alignment():
    scores = score_frame(_decoded(["Please enter your password.", "Goodbye."], ["please enter the password word", "goodbye"]))
    first = scores.iloc[0]
    assert (first.n_ref_words, first.substitutions, first.deletions, first.insertions) == (4, 1, 0, 1)
    assert scores.iloc[1][["substitutions", "deletions", "insertions"]].sum() == 0
    assert scores["n_ref_chars"].iloc[1] == len("goodbye")


def test_runaway_is_a_loop_or_the_token_limit():
    scores = score_frame(
        _decoded(["yes", "no", "maybe"], ["yes", "no no no no no", "maybe"], limit=[False, False, True]), loop_min_repeats=4
    )
    assert scores["looping"].tolist() == [False, True, False]
    assert scores["runaway"].tolist() == [False, True, True]


def test_scores_carry_the_prompt_id_of_the_decode_or_the_row_id_for_older_decodes():
    decoded = _decoded(["Please hold.", "Please hold."], ["please hold", "please fold"]).assign(
        prompt_id=["please-hold", "please-hold"])
    assert list(score_frame(decoded)["prompt_id"]) == ["please-hold", "please-hold"]
    older = score_frame(_decoded(["Please hold.", "Goodbye."], ["please hold", "goodbye"]))
    assert list(older["prompt_id"]) == ["u0", "u1"]  # written before prompt ids: each row its own prompt
