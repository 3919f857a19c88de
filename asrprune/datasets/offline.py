"""Offline datasets built from Debian packages: real IVR prompts, TTS readings, degradations, calibration
(the catalog of prompts and the builders; sentence keys and the split: asrprune.datasets.sentences;
the voices: asrprune.datasets.tts).

The sentence pool is the Asterisk English prompt set (one real speaker, "Allison"). Every sentence is
keyed by its normalized text and assigned once and for all to the test pool or the calibration pool by
a hash of that key, so the calibration split never shares an utterance or a sentence with a test split,
and identical sentences recorded under several file names always land in the same pool.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow.parquet as pq

from asrprune.audio import PCM_PEAK, SAMPLE_RATE, check_duration, decode_audio, encode_flac, peak_normalize
from asrprune.datasets.degradations import degradation_tag, degrade
from asrprune.datasets.schema import AUDIO_SCHEMA
from asrprune.datasets.sentences import (
    CALIB_ONE_IN,
    SPLIT_SALT,
    SYMBOL_WORDS,
    TRANSCRIPT_FIXES,
    clean_transcript,
    normalize_text,
    pool_of,
    select,
    utterance_rng,
)
from asrprune.datasets.tts import check_voice, map_threads, synthesize, voice_packages, voice_slug
from asrprune.settings import dataset_option

log = logging.getLogger(__name__)

ASTERISK_SOUNDS = "usr/share/asterisk/sounds/en_US_f_Allison"
ASTERISK_TRANSCRIPTS = "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
ASTERISK_SOURCE = "asterisk:en_US_f_Allison"
ASTERISK_PACKAGES = ("asterisk-core-sounds-en-wav", "asterisk-core-sounds-en")

# Sentences whose recording is longer than this are left out of both pools: a TTS voice reads more
# slowly than Allison on some prompts, and anything over 30 s would be rejected (audio.MAX_SECONDS).
POOL_MAX_SECONDS = 20.0




# --------------------------------------------------------------------------------------------------
# The catalog: the Asterisk prompts and the sentence pool


def slug(name: str) -> str:
    """File-system- and id-safe form of a prompt name: `digits/10` -> `digits.10`."""
    return name.replace("/", ".")


@dataclass(frozen=True)
class Prompt:
    """One real recording with its cleaned transcript."""

    name: str  # file name under the sounds dir, without .wav, e.g. "digits/10"
    text: str
    norm: str
    wav: Path
    duration_s: float


@dataclass(frozen=True)
class Sentence:
    """One distinct normalized sentence and every recording of it."""

    sentence_id: str  # slug of its first recording's name
    text: str  # the first recording's cleaned transcript (what the TTS voices read)
    norm: str
    pool: str
    prompts: tuple[Prompt, ...]

    @property
    def max_duration_s(self) -> float:
        return max(p.duration_s for p in self.prompts)


@dataclass(frozen=True)
class Catalog:
    """The prompt set split into sentences, plus what was left out and why."""

    sentences: tuple[Sentence, ...]
    dropped: dict[str, str]  # prompt name -> reason

    def eligible(self, pool: str) -> list[Sentence]:
        """Sentences of `pool` short enough for every split."""
        return [s for s in self.sentences if s.pool == pool and s.max_duration_s <= POOL_MAX_SECONDS]


def _read_transcripts(path: Path) -> dict[str, str]:
    """`name: text` lines of the Asterisk transcript file (comments and blank lines skipped)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: Asterisk transcripts not found; install the Debian package "
                                "asterisk-core-sounds-en (or set the spec's `prefix`)")
    out: dict[str, str] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith(";"):
                continue
            name, sep, text = line.partition(":")
            if not sep:
                raise ValueError(f"{path}: line {line.strip()!r} is not `name: text`")
            out[name.strip()] = text.strip()
    return out


@lru_cache(maxsize=4)
def load_catalog(prefix: str = "/") -> Catalog:
    """Parse the Asterisk prompts under `prefix` (a root where the Debian packages are installed)."""
    import soundfile as sf

    root = Path(prefix) / ASTERISK_SOUNDS
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: Asterisk prompts not found; install the Debian package "
                                "asterisk-core-sounds-en-wav (or set the spec's `prefix`)")
    dropped: dict[str, str] = {}
    prompts: list[Prompt] = []
    for name, raw in sorted(_read_transcripts(Path(prefix) / ASTERISK_TRANSCRIPTS).items()):
        wav = root / f"{name}.wav"
        text = clean_transcript(raw)
        if name.startswith("silence/"):
            dropped[name] = "silence"
        elif not text:
            dropped[name] = f"not speech: {raw!r}"
        elif not wav.exists():
            dropped[name] = "no WAV file"
        else:
            info = sf.info(str(wav))
            prompts.append(Prompt(name, text, normalize_text(text), wav, info.frames / info.samplerate))
    by_norm: dict[str, list[Prompt]] = {}
    for p in prompts:
        by_norm.setdefault(p.norm, []).append(p)
    sentences = []
    for norm, group in by_norm.items():
        group.sort(key=lambda p: p.name)
        sentences.append(Sentence(slug(group[0].name), group[0].text, norm, pool_of(norm), tuple(group)))
    sentences.sort(key=lambda s: s.sentence_id)
    for s in sentences:
        if s.max_duration_s > POOL_MAX_SECONDS:
            for p in s.prompts:
                dropped[p.name] = f"sentence has a recording over {POOL_MAX_SECONDS:g} s"
    return Catalog(tuple(sentences), dict(sorted(dropped.items())))


# --------------------------------------------------------------------------------------------------
# Builders: each returns (rows, provenance extras)


def _real_rows(prompts: Sequence[tuple[Prompt, Sentence]]) -> list[dict]:
    """Rows of real recordings, resampled 8 -> 16 kHz exactly (polyphase 2/1)."""
    rows = []
    for p, s in prompts:
        utt = f"allison-{slug(p.name)}"
        # polyphase resampling overshoots full-scale peaks by up to ~1 %: scale rather than clip
        x = peak_normalize(decode_audio(p.wav.read_bytes(), name=utt), PCM_PEAK)
        rows.append(dict(id=utt, audio=encode_flac(x), duration_s=len(x) / SAMPLE_RATE, text=p.text,
                         source=ASTERISK_SOURCE, sentence_id=s.sentence_id))
    return rows


def _tts_rows(sentences: Sequence[Sentence], voices: Sequence[str], threads: int) -> list[dict]:
    """Sentence i (sorted by sentence_id) read by voice i mod len(voices), so every voice appears."""
    for v in voices:
        check_voice(v)
    jobs = [(s, voices[i % len(voices)]) for i, s in enumerate(sorted(sentences, key=lambda s: s.sentence_id))]

    def run(job: tuple[Sentence, str]) -> dict:
        s, voice = job
        utt = f"{voice_slug(voice)}-{s.sentence_id}"
        x = synthesize(voice, s.text, name=utt)
        check_duration(x, name=utt)
        return dict(id=utt, audio=encode_flac(x), duration_s=len(x) / SAMPLE_RATE, text=s.text,
                     source=f"tts:{voice}", sentence_id=s.sentence_id)

    return map_threads(run, jobs, threads)


def max_utts_of(spec: dict) -> int | None:
    """max_utts of a spec; None (all) when it is null/absent or when `full: true`."""
    if spec.get("full"):
        return None
    n = spec.get("max_utts")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"max_utts is {n!r}; expected a positive integer or null")
    return n


def _voices(spec: dict, minimum: int) -> list[str]:
    voices = list(dataset_option(spec, "voices"))
    if len(voices) < minimum:
        raise ValueError(f"voices {voices}: expected at least {minimum} voice(s)")
    if len(set(voices)) != len(voices):
        raise ValueError(f"voices {voices}: expected distinct voices")
    return voices


def _catalog(spec: dict) -> Catalog:
    return load_catalog(str(dataset_option(spec, "prefix")))


def pool_summary(cat: Catalog) -> dict:
    """What the provenance records about the sentence pools."""
    return {
        "rule": f"sha256('{SPLIT_SALT}' + whisper-normalized text) % {CALIB_ONE_IN} == 0 -> calib",
        "test_sentences": len(cat.eligible("test")),
        "calib_sentences": len(cat.eligible("calib")),
        "max_recording_s": POOL_MAX_SECONDS,
        "dropped": cat.dropped,
        "transcript_fixes": TRANSCRIPT_FIXES,
        "symbol_words": SYMBOL_WORDS,
    }


def build_ivr(spec: dict, threads: int = 1) -> tuple[list[dict], dict]:
    """Real Allison recordings of test-pool sentences."""
    cat = _catalog(spec)
    prompts = {p.name: (p, s) for s in cat.eligible("test") for p in s.prompts}
    chosen = select(prompts, max_utts_of(spec), int(dataset_option(spec, "seed")))
    return _real_rows([prompts[n] for n in chosen]), {"pool": pool_summary(cat),
                                                       "packages": ASTERISK_PACKAGES}


def build_tts(spec: dict, threads: int = 1) -> tuple[list[dict], dict]:
    """Test-pool sentences read by TTS voices, one voice per sentence, cycling through the voices."""
    cat = _catalog(spec)
    voices = _voices(spec, 3)
    sentences = {s.sentence_id: s for s in cat.eligible("test")}
    chosen = select(sentences, max_utts_of(spec), int(dataset_option(spec, "seed")))
    rows = _tts_rows([sentences[k] for k in chosen], voices, threads)
    return rows, {"pool": pool_summary(cat), "packages": ASTERISK_PACKAGES[1:] + voice_packages(voices)}


def build_calib(spec: dict, threads: int = 1) -> tuple[list[dict], dict]:
    """Calibration split: real recordings and TTS readings of calibration-pool sentences only."""
    cat = _catalog(spec)
    voices = _voices(spec, 0)
    n = max_utts_of(spec)
    frac = float(spec.get("real_fraction", 0.5 if voices else 1.0))
    if not 0.0 <= frac <= 1.0 or (frac < 1.0 and not voices):
        raise ValueError(f"real_fraction {frac}: expected 0..1, and 1 when no voices are given")
    seed = int(dataset_option(spec, "seed"))
    eligible = cat.eligible("calib")
    prompts = {p.name: (p, s) for s in eligible for p in s.prompts}
    sentences = {s.sentence_id: s for s in eligible}
    n_real = None if n is None else int(round(n * frac))
    n_tts = None if n is None else n - n_real
    real = select(prompts, n_real, seed) if frac > 0 else []
    tts = select(sentences, n_tts, seed) if frac < 1 else []
    rows = _real_rows([prompts[k] for k in real])
    if tts:
        rows += _tts_rows([sentences[k] for k in tts], voices, threads)
    packages = ASTERISK_PACKAGES + (voice_packages(voices) if tts else ())
    return rows, {"pool": pool_summary(cat), "packages": packages}


def build_degraded(spec: dict, inputs: dict[str, Path], threads: int = 1) -> tuple[list[dict], dict]:
    """Every utterance of dataset `of` with one degradation, cycling through `degradations` by id order."""
    from asrprune.io import read_parquet_metadata, sha256_file

    degs = list(spec.get("degradations") or [])
    if not degs:
        raise ValueError("degraded dataset: `degradations` is empty; expected a list of {type: ...}")
    tags = [degradation_tag(d) for d in degs]
    src = Path(inputs["of"])
    if not src.exists():
        raise FileNotFoundError(f"{src}: dataset {spec.get('of')!r} (the `of` of a degraded split) is not built")
    prov = read_parquet_metadata(src).get("provenance", {})
    if isinstance(prov, dict) and (prov.get("spec") or {}).get("kind") == "calib":
        raise ValueError(f"{src}: is a calibration split; a degraded test split must not be built from it")
    table = pq.read_table(src, schema=AUDIO_SCHEMA).sort_by("id")
    seed = int(dataset_option(spec, "seed"))
    rows = []
    for i, r in enumerate(table.to_pylist()):
        deg, tag = degs[i % len(degs)], tags[i % len(degs)]
        utt = f"{r['id']}+{tag}"
        y = degrade(decode_audio(r["audio"], name=r["id"]), deg, utterance_rng(seed, utt))
        check_duration(y, name=utt)
        rows.append(dict(id=utt, audio=encode_flac(y), duration_s=len(y) / SAMPLE_RATE, text=r["text"],
                         source=f"{r['source']}+{tag}", sentence_id=r["sentence_id"]))
    return rows, {"input": {"name": src.name, "sha256": sha256_file(src)},
                  "input_packages": (prov.get("packages") if isinstance(prov, dict) else None)}


def build_offline(spec: dict, inputs: dict[str, Path], threads: int = 1) -> tuple[list[dict], dict]:
    """Dispatch an offline spec on its `kind`."""
    kind = spec.get("kind")
    if kind == "ivr":
        return build_ivr(spec, threads)
    if kind == "tts":
        return build_tts(spec, threads)
    if kind == "calib":
        return build_calib(spec, threads)
    if kind == "degraded":
        if "of" not in inputs:
            raise ValueError("degraded dataset: inputs['of'] (the Parquet file of spec['of']) is missing")
        return build_degraded(spec, inputs, threads)
    raise ValueError(f"offline dataset kind {kind!r}: expected ivr, tts, degraded or calib")
