"""Audio decoding/encoding: exact resampling, downmixing, clear errors, deterministic FLAC."""

import io

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from asrprune.audio import MAX_SECONDS, SAMPLE_RATE, decode_audio, encode_flac, resample, to_pcm16


def wav_bytes(samples: np.ndarray, sr: int, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return amp * np.sin(2 * np.pi * freq * t)


def peak_hz(x: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    spec = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


def test_16k_mono_passes_through_unchanged():
    x = to_pcm16(tone(440, 0.5, 16000)).astype(np.float32) / 32768
    y = decode_audio(wav_bytes(x, 16000), name="u1")
    assert y.dtype == np.float32 and y.ndim == 1
    np.testing.assert_array_equal(y, x)


def test_8k_is_resampled_exactly_by_two():
    x = tone(1000, 1.0, 8000)
    data = wav_bytes(x, 8000)
    y = decode_audio(data, name="u8k")
    ref = resample_poly(sf.read(io.BytesIO(data), dtype="float32")[0].astype(np.float64), 2, 1)
    assert len(y) == 16000
    np.testing.assert_allclose(y, ref.astype(np.float32), atol=1e-7)
    assert peak_hz(y) == pytest.approx(1000, abs=2)


def test_44k1_stereo_is_downmixed_by_mean_and_resampled_with_reduced_ratio():
    sr = 44100
    left, right = tone(500, 1.0, sr, 0.4), tone(2000, 1.0, sr, 0.2)
    data = wav_bytes(np.stack([left, right], axis=1), sr)
    y = decode_audio(data, name="stereo")
    assert len(y) == 16000  # 44100 * 160 / 441
    mono = sf.read(io.BytesIO(data), dtype="float32")[0].mean(axis=1)
    np.testing.assert_allclose(y, resample_poly(mono.astype(np.float64), 160, 441), atol=1e-6)
    spec = np.abs(np.fft.rfft(y))
    freqs = np.fft.rfftfreq(len(y), 1 / SAMPLE_RATE)
    # both channels are present, at half their amplitude
    assert spec[np.argmin(abs(freqs - 500))] / spec[np.argmin(abs(freqs - 2000))] == pytest.approx(2, rel=0.05)


def test_resample_uses_the_reduced_ratio():
    assert len(resample(np.zeros(11025), 22050)) == 8000
    assert len(resample(np.zeros(48000), 48000)) == 16000
    assert len(resample(np.zeros(32000), 32000)) == 16000


@pytest.mark.parametrize("data,match", [
    (b"", "empty"),
    (b"RIFF\x00\x00garbage-not-audio" * 10, "cannot decode"),
    (b"\x00" * 1000, "cannot decode"),
])
def test_bad_bytes_raise_value_error_naming_the_utterance(data, match):
    with pytest.raises(ValueError, match=f"utt-42.*{match}"):
        decode_audio(data, name="utt-42")


def test_truncated_flac_raises_value_error():
    data = encode_flac(tone(300, 2.0, 16000))
    with pytest.raises(ValueError, match="utt-t"):
        decode_audio(data[:60], name="utt-t")


def test_zero_length_audio_is_rejected():
    with pytest.raises(ValueError, match="zero-len.*zero samples"):
        decode_audio(wav_bytes(np.zeros(0), 16000), name="zero-len")


def test_over_30_seconds_is_rejected_with_id_and_duration_never_truncated():
    data = wav_bytes(np.zeros(int(30.5 * 8000)), 8000)
    with pytest.raises(ValueError, match=r"long-utt: audio is 30\.50 s long; at most 30 s"):
        decode_audio(data, name="long-utt")
    assert len(decode_audio(data, name="long-utt", max_seconds=None)) == int(30.5 * 16000)
    assert len(decode_audio(wav_bytes(np.zeros(int(MAX_SECONDS * 16000)), 16000), name="ok")) == 480000


def test_encode_flac_is_deterministic_and_round_trips_exactly():
    x = tone(700, 1.3, 16000, 0.3) + 0.01 * np.random.default_rng(0).standard_normal(20800)
    a, b = encode_flac(x), encode_flac(x.copy())
    assert a == b and a[:4] == b"fLaC"
    info = sf.info(io.BytesIO(a))
    assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "FLAC")
    y = decode_audio(a, name="rt")
    np.testing.assert_array_equal(y, to_pcm16(x).astype(np.float32) / 32768)
    assert encode_flac(y) == a  # decode -> encode is the identity on quantized audio


def test_encode_flac_rejects_empty_and_multichannel():
    with pytest.raises(ValueError, match="non-empty 1-D"):
        encode_flac(np.zeros(0))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        encode_flac(np.zeros((10, 2)))
