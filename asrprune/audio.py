"""Audio bytes <-> 16 kHz mono float32 samples, exactly and deterministically.

Policy on length: Whisper sees a fixed 30 s window, so an utterance longer than `MAX_SECONDS` is
rejected with an error naming it and its duration. Audio is never silently truncated; a builder that
wants to drop long utterances instead must do so explicitly and record what it dropped.
"""

from __future__ import annotations

import io
import re
from math import gcd

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
PCM_PEAK = 32767 / 32768  # the largest value PCM_16 holds; louder audio is scaled down, never clipped
MAX_SECONDS = 30.0


def resample(samples: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling by the reduced rational ratio sr_out/sr_in (exact for 8k->16k, 44.1k->16k)."""
    if sr_in == sr_out:
        return np.asarray(samples, dtype=np.float32)
    g = gcd(int(sr_in), int(sr_out))
    up, down = sr_out // g, sr_in // g
    return resample_poly(np.asarray(samples, dtype=np.float64), up, down).astype(np.float32)


def check_duration(samples: np.ndarray, *, name: str, sr: int = SAMPLE_RATE,
                   max_seconds: float = MAX_SECONDS) -> None:
    """Raise ValueError if `samples` are longer than `max_seconds` (never truncate)."""
    seconds = len(samples) / sr
    if seconds > max_seconds:
        raise ValueError(
            f"{name}: audio is {seconds:.2f} s long; at most {max_seconds:g} s is accepted "
            "(Whisper's window is 30 s and utterances are never truncated)"
        )


# libsndfile's parser log says "data : 32000 (should be 15978)" when a WAV's (or an AIFF's SSND)
# header declares more sample bytes than the file holds; it then reads what is there, silently.
_SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# What writers put in the size field when they stream to a pipe and cannot seek back: not a claim.
_UNKNOWN_LENGTH = 0x7FFFF000
_BLOCK_ALIGN = re.compile(r"Block Align\s*:\s*(\d+)")
_SAMPLE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4,
                 "FLOAT": 4, "DOUBLE": 8}


def check_complete(f: sf.SoundFile, *, name: str, source: str | None = None) -> None:
    """Raise ValueError when the header declares more sample bytes than the file holds (a truncated copy)."""
    m = _SHORT_CHUNK.search(f.extra_info)
    if not m:
        return
    declared, held = int(m[1]), int(m[2])
    if held >= declared or declared >= _UNKNOWN_LENGTH:
        return
    align = _BLOCK_ALIGN.search(f.extra_info)
    block = int(align[1]) if align else _SAMPLE_BYTES.get(f.subtype, 0) * f.channels

    def seconds(n: int) -> str:
        return f" ({n / block / f.samplerate:.2f} s)" if block else ""
    what = f"audio file {source} is truncated" if source else "audio is truncated"
    raise ValueError(
        f"{name}: {what}: its header declares {declared} bytes of samples{seconds(declared)}, the file holds "
        f"{held}{seconds(held)}; expected a complete file (copy or download it again)"
    )


# A mixdown this far (60 dB) below its loudest channel has cancelled the signal: channels of opposite
# polarity (one wired inverted) average to silence, which Whisper "transcribes" as "you".
MIXDOWN_CANCELLED_DB = 60.0
# Channels quieter than this (RMS, full scale 1) are silence themselves: nothing is lost by averaging.
SILENCE_RMS = 1e-4


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def check_mixdown(samples: np.ndarray, mono: np.ndarray, *, name: str) -> None:
    """Refuse multichannel audio whose average is silent while a channel is not (opposite polarity)."""
    channel_rms = [_rms(samples[:, c]) for c in range(samples.shape[1])]
    loudest = int(np.argmax(channel_rms))
    if channel_rms[loudest] < SILENCE_RMS:
        return
    mixed = _rms(mono)
    if mixed < channel_rms[loudest] * 10 ** (-MIXDOWN_CANCELLED_DB / 20):
        level = (f"{20 * np.log10(mixed / channel_rms[loudest]):.0f} dB below channel {loudest + 1}" if mixed > 0
                 else f"all zeros, while channel {loudest + 1} is not silent")
        raise ValueError(
            f"{name}: the {samples.shape[1]} channels average to silence ({level}): its channels have opposite "
            "polarity; expected audio whose "
            f"mixdown keeps the speech: use one channel, e.g. channel {loudest + 1} "
            f"(sox IN.wav OUT.wav remix {loudest + 1})"
        )


def decode_audio(data: bytes, *, name: str, max_seconds: float | None = MAX_SECONDS,
                 source: str | None = None) -> np.ndarray:
    """Decode any soundfile-readable bytes to float32 mono 16 kHz; stereo is averaged.

    Raises ValueError naming `name` (and the file `source`, when given) for empty, corrupt,
    truncated, zero-length, non-finite or too long audio.
    """
    if not data:
        raise ValueError(f"{name}: audio bytes are empty; expected a WAV/FLAC/OGG file's bytes")
    try:
        with sf.SoundFile(io.BytesIO(bytes(data))) as f:
            check_complete(f, name=name, source=source)
            samples, sr = f.read(dtype="float32", always_2d=True), f.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ValueError(
            f"{name}: cannot decode {len(data)} audio bytes ({exc}); expected a WAV/FLAC/OGG file"
        ) from exc
    if samples.shape[0] == 0:
        raise ValueError(f"{name}: audio has zero samples; expected at least one sample of speech")
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if not np.all(np.isfinite(mono)):
        raise ValueError(f"{name}: audio contains NaN or infinite samples; expected finite PCM")
    if samples.shape[1] > 1:
        check_mixdown(samples, mono, name=name)
    out = resample(mono, int(sr), SAMPLE_RATE)
    if max_seconds is not None:
        check_duration(out, name=name, max_seconds=max_seconds)
    return out


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Quantize float samples to int16 with the same 1/32768 scale soundfile uses when reading.

    Doing it here (rather than letting libsndfile convert) makes decode->encode an exact round trip.
    Values outside [-1, 1) are clipped; builders that may overshoot normalize before calling this.
    """
    x = np.asarray(samples, dtype=np.float64)
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def encode_flac(samples: np.ndarray, sr: int = SAMPLE_RATE) -> bytes:
    """Encode mono samples as PCM_16 FLAC; equal samples give identical bytes (no timestamps)."""
    pcm = to_pcm16(samples)
    if pcm.ndim != 1 or pcm.size == 0:
        raise ValueError(f"encode_flac: expected a non-empty 1-D array of samples, got shape {pcm.shape}")
    buf = io.BytesIO()
    sf.write(buf, pcm, sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def peak_normalize(samples: np.ndarray, peak: float = 0.95) -> np.ndarray:
    """Scale down (never up) so that |samples| <= peak; keeps ratios such as SNR unchanged."""
    top = float(np.max(np.abs(samples))) if len(samples) else 0.0
    return samples * (peak / top) if top > peak else samples
