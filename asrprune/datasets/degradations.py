"""Degradations of 16 kHz speech, numpy/scipy only and seeded per utterance: pink noise at a set SNR,
reverberation by a synthetic room impulse response, a telephone channel (band-pass, 8 kHz, mu-law).

The offline `degraded` split (asrprune.datasets.offline.build_degraded) applies one per copy of a
clean split; samples in, samples out.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, fftconvolve, resample_poly, sosfilt

from asrprune.audio import SAMPLE_RATE, peak_normalize


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance pink (1/f power) noise: seeded white noise shaped by 1/sqrt(f), no DC."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    shape = np.zeros_like(f)
    shape[1:] = 1.0 / np.sqrt(f[1:])
    noise = np.fft.irfft(spec * shape, n)
    return noise / np.sqrt(np.mean(noise**2))


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """x + noise scaled so that 10 log10(mean x^2 / mean noise^2) == snr_db (whole-utterance power).

    The noise's chance correlation with x is projected out first (pink noise on a short utterance
    has few degrees of freedom), so mixture power is exactly signal plus noise power.
    """
    ps = float(np.mean(x**2))
    if ps == 0.0:
        raise ValueError("cannot set an SNR on silent audio")
    noise = noise - x * (float(noise @ x) / float(x @ x))
    pn = float(np.mean(noise**2))
    return x + noise * np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))


def synthetic_rir(rt60_s: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Room impulse response: a unit direct path plus seeded Gaussian tail decaying 60 dB in rt60_s.

    The tail carries as much energy as the direct path (direct-to-reverberant ratio 0 dB).
    """
    n = max(2, int(round(rt60_s * sr)))
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-np.log(1000.0) * t / rt60_s)
    tail[0] = 0.0
    tail /= np.sqrt(np.sum(tail**2))
    tail[0] = 1.0
    return tail


def reverberate(x: np.ndarray, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic RIR; the tail is kept (length grows by rt60_s), level preserved."""
    h = synthetic_rir(rt60_s, rng)
    return fftconvolve(x, h) / np.sqrt(np.sum(h**2))


def mu_law(x: np.ndarray, mu: int = 255, bits: int = 8) -> np.ndarray:
    """G.711-style mu-law companding quantization (encode to `bits` bits and back)."""
    x = np.clip(x, -1.0, 1.0)
    c = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    levels = 2 ** (bits - 1) - 1
    c = np.round(c * levels) / levels
    return np.sign(c) * np.expm1(np.abs(c) * np.log1p(mu)) / mu


def telephone(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Telephone channel: 300-3400 Hz band-pass, 8 kHz sampling with 8-bit mu-law, back to 16 kHz."""
    sos = butter(4, [300.0, 3400.0], btype="bandpass", fs=sr, output="sos")
    narrow = resample_poly(sosfilt(sos, x), 1, 2)
    return resample_poly(mu_law(narrow), 2, 1)


def degradation_tag(deg: dict) -> str:
    """Readable, stable suffix of one degradation: pink10dB, reverb0.5s, telephone."""
    kind = deg.get("type")
    try:
        if kind == "pink_noise":
            return f"pink{float(deg['snr_db']):g}dB"
        if kind == "reverb":
            if not float(deg["rt60_s"]) > 0:
                raise ValueError(f"degradation {deg}: rt60_s must be > 0 seconds")
            return f"reverb{float(deg['rt60_s']):g}s"
    except KeyError as exc:
        raise ValueError(f"degradation {deg}: missing key {exc}") from exc
    if kind == "telephone":
        return "telephone"
    raise ValueError(f"degradation {deg}: unknown type {kind!r}; expected pink_noise, reverb or telephone")


def degrade(x: np.ndarray, deg: dict, rng: np.random.Generator) -> np.ndarray:
    """Apply one degradation to 16 kHz samples; output is peak-limited (scaling keeps the SNR)."""
    kind = deg["type"]
    x = np.asarray(x, dtype=np.float64)
    if kind == "pink_noise":
        y = add_noise(x, pink_noise(len(x), rng), float(deg["snr_db"]))
    elif kind == "reverb":
        y = reverberate(x, float(deg["rt60_s"]), rng)
    elif kind == "telephone":
        y = telephone(x)
    else:
        raise ValueError(f"degradation {deg}: unknown type {kind!r}")
    return peak_normalize(y, 0.95)
