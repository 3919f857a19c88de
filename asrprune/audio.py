"""Audio bytes <-> 16 kHz mono float32 samples, exactly and deterministically.

Policy on length: Whisper sees a fixed 30 s window, so an utterance longer than `MAX_SECONDS` is
rejected with an error naming it and its duration. Audio is never silently truncated; a builder that
wants to drop long utterances instead must do so explicitly and record what it dropped.
"""

from __future__ import annotations

import io
from math import gcd

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
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


def decode_audio(data: bytes, *, name: str, max_seconds: float | None = MAX_SECONDS) -> np.ndarray:
    """Decode any soundfile-readable bytes to float32 mono 16 kHz; stereo is averaged.

    Raises ValueError naming `name` for empty, corrupt, zero-length, non-finite or too long audio.
    """
    if not data:
        raise ValueError(f"{name}: audio bytes are empty; expected a WAV/FLAC/OGG file's bytes")
    try:
        samples, sr = sf.read(io.BytesIO(bytes(data)), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ValueError(
            f"{name}: cannot decode {len(data)} audio bytes ({exc}); expected a WAV/FLAC/OGG file"
        ) from exc
    if samples.shape[0] == 0:
        raise ValueError(f"{name}: audio has zero samples; expected at least one sample of speech")
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if not np.all(np.isfinite(mono)):
        raise ValueError(f"{name}: audio contains NaN or infinite samples; expected finite PCM")
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
