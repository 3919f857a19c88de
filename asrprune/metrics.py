"""Per-utterance error counts under two normalizations, and runaway-decoding flags."""

from __future__ import annotations

import re
from functools import lru_cache

import jiwer
import pandas as pd

_PUNCT_ONLY = re.compile(r"^\W+$")

SCORE_COLUMNS = [
    "id",
    "prompt_id",
    "ref_norm",
    "hyp_norm",
    "n_ref_words",
    "substitutions",
    "deletions",
    "insertions",
    "hits",
    "n_ref_chars",
    "char_errors",
    "n_ref_words_basic",
    "word_errors_basic",
    "looping",
    "hit_token_limit",
    "runaway",
    "duration_s",
    "decode_s",
    "language",
]


@lru_cache(maxsize=1)
def _normalizers():
    from whisper_normalizer.basic import BasicTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer(), BasicTextNormalizer()


def normalize_english(text: str) -> str:
    """The Whisper English normalizer (Open ASR Leaderboard convention).

    Tokens made only of punctuation are dropped afterwards: the normalizer turns a trailing
    "..." into a stray "." token, which is no word and would count as an error.
    """
    english, _ = _normalizers()
    return " ".join(t for t in english(text).split() if not _PUNCT_ONLY.match(t))


def normalize_basic(text: str) -> str:
    """Lowercase, punctuation and symbols stripped, whitespace collapsed (Whisper's basic normalizer)."""
    _, basic = _normalizers()
    return " ".join(basic(text).split())


def repeats_in_loop(words: list[str], min_repeats: int = 4, max_ngram: int = 4) -> bool:
    """True when some n-gram (n ≤ max_ngram) repeats back to back at least `min_repeats` times:
    the "the the the …" failure of pruned decoders."""
    n_words = len(words)
    for n in range(1, max_ngram + 1):
        for start in range(0, n_words - n * min_repeats + 1):
            gram = words[start : start + n]
            if all(words[start + k * n : start + (k + 1) * n] == gram for k in range(1, min_repeats)):
                return True
    return False


def _word_counts(ref: str, hyp: str) -> tuple[int, int, int, int]:
    out = jiwer.process_words(ref, hyp)
    return out.substitutions, out.deletions, out.insertions, out.hits


def _char_errors(ref: str, hyp: str) -> int:
    if not ref:
        return len(hyp)
    out = jiwer.process_characters(ref, hyp)
    return out.substitutions + out.deletions + out.insertions


def score_frame(decoded: pd.DataFrame, loop_min_repeats: int = 4, where: str = "decode") -> pd.DataFrame:
    """Alignment counts per utterance (jiwer), under the English and the basic normalizer.

    A reference with no word left under either normalizer is refused (ValueError naming `where`
    and the utterance): its WER is undefined and a table over it would mix NaN with numbers.
    prepare_dataset refuses such transcripts already; this guards data sets built before it did.
    """
    rows = []
    for rec in decoded.itertuples(index=False):
        ref, hyp = normalize_english(rec.reference), normalize_english(rec.hypothesis)
        ref_b, hyp_b = normalize_basic(rec.reference), normalize_basic(rec.hypothesis)
        if not ref or not ref_b:
            raise ValueError(f"{where}: utterance {rec.id!r} has reference {rec.reference!r}, which normalizes to no "
                             "words; expected at least one word to score (rebuild the data set: prepare_dataset "
                             "refuses such transcripts, or leaves them out with `on_empty_reference: skip`)")
        s, d, i, h = _word_counts(ref, hyp)
        sb, db, ib, _ = _word_counts(ref_b, hyp_b)
        looping = repeats_in_loop(hyp.split(), loop_min_repeats)
        rows.append(
            {
                "id": rec.id,
                # decodes written before prompt ids existed: each row is its own prompt
                "prompt_id": str(getattr(rec, "prompt_id", rec.id)),
                "ref_norm": ref,
                "hyp_norm": hyp,
                "n_ref_words": len(ref.split()),
                "substitutions": s,
                "deletions": d,
                "insertions": i,
                "hits": h,
                "n_ref_chars": len(ref),
                "char_errors": _char_errors(ref, hyp),
                "n_ref_words_basic": len(ref_b.split()),
                "word_errors_basic": sb + db + ib,
                "looping": looping,
                "hit_token_limit": bool(rec.hit_token_limit),
                "runaway": looping or bool(rec.hit_token_limit),
                "duration_s": float(rec.duration_s),
                "decode_s": float(rec.decode_s),
                # decodes written before decoding.language existed were all in English (forced or .en)
                "language": str(getattr(rec, "language", "en")),
            }
        )
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)
