"""What makes a sentence of the offline sets: its cleaned transcript, its key (the normalized text),
the pool the key hashes into (test or calibration, once and for all), and the seeded, hash-based
selection and per-utterance seeding every builder uses. No file I/O."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from functools import lru_cache

import numpy as np

CALIB_ONE_IN = 4  # ~25 % of sentences go to the calibration pool
SPLIT_SALT = "asrprune-split:"

# Typos in the upstream transcripts (the speaker says the corrected word).
TRANSCRIPT_FIXES = {
    "umute": "unmute",
    "exclaimation": "exclamation",
    "fourtieth": "fortieth",
    "thru": "through",
}
# Keypad symbols are spoken as words in these prompts ("press * to ..." is read "press star to ...").
SYMBOL_WORDS = {"*": "star", "#": "pound"}


def clean_transcript(raw: str) -> str:
    """Reference text of one prompt: non-speech notes removed, symbols spoken, known typos fixed.

    `[...]`, `<...>` and `(...)` are annotations (`[beep tone]`, `<beep ascending>`, `(simple tone
    sound plays)`); `...` marks a pause and would become a stray token under the Whisper normalizer.
    Returns "" when nothing speakable is left.
    """
    text = re.sub(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)", " ", raw)
    text = re.sub(r"\.{2,}|…", " ", text)
    for sym, word in SYMBOL_WORDS.items():
        text = text.replace(sym, f" {word} ")
    for typo, fix in TRANSCRIPT_FIXES.items():
        text = re.sub(rf"\b{typo}\b", fix, text, flags=re.IGNORECASE)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;:?!])", r"\1", text)
    return text if re.search(r"[A-Za-z0-9]", text) else ""


@lru_cache(maxsize=1)
def _normalizer() -> Callable[[str], str]:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize_text(text: str) -> str:
    """The sentence key: the Whisper English normalizer (as in scoring), whitespace collapsed."""
    return " ".join(_normalizer()(text).split())


def pool_of(norm_text: str) -> str:
    """'calib' or 'test', from a sha256 of the normalized sentence (stable across runs and machines)."""
    h = int.from_bytes(hashlib.sha256((SPLIT_SALT + norm_text).encode()).digest()[:8], "big")
    return "calib" if h % CALIB_ONE_IN == 0 else "test"


def stable_hash(key: str) -> int:
    """A 64-bit integer from sha256(key) (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def ranked(keys: Iterable[str], seed: int) -> list[str]:
    """Distinct keys in a seeded pseudo-random order: by sha256(seed, key), independent of numpy."""
    return sorted(set(keys), key=lambda k: (stable_hash(f"{seed}:{k}"), k))


def select(keys: Iterable[str], n: int | None, seed: int) -> list[str]:
    """A seeded sample of `n` keys (all if None), returned sorted; a larger n contains a smaller one."""
    order = ranked(keys, seed)
    if n is not None and n < 0:
        raise ValueError(f"max_utts is {n}; expected a non-negative integer or null")
    return sorted(order if n is None else order[:n])


def utterance_rng(seed: int, utt_id: str) -> np.random.Generator:
    """A numpy Generator seeded from the dataset seed and a stable hash of the utterance id."""
    return np.random.default_rng([int(seed), stable_hash(utt_id)])
