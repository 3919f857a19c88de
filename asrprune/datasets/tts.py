"""Speech synthesis for the offline sets: festival and flite voices, each call its own subprocess."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from asrprune.audio import PCM_PEAK, decode_audio, peak_normalize

FESTIVAL_VOICE_PACKAGES = {"cmu_us_slt_arctic_hts": "festvox-us-slt-hts", "kal_diphone": "festvox-kallpc16k"}


def parse_voice(voice: str) -> tuple[str, str]:
    """`engine:voice` -> (engine, voice); engine is festival or flite."""
    engine, sep, name = voice.partition(":")
    if not sep or engine not in ("festival", "flite") or not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ValueError(f"voice {voice!r}: expected 'festival:NAME' or 'flite:NAME' "
                         "(e.g. festival:cmu_us_slt_arctic_hts, flite:rms)")
    return engine, name


def voice_slug(voice: str) -> str:
    """`flite:rms` -> `flite-rms` (used in utterance ids)."""
    engine, name = parse_voice(voice)
    return f"{engine}-{name}"


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(f"`{binary}` not found on PATH; install the Debian package {package}")
    return path


@lru_cache(maxsize=1)
def flite_voices() -> tuple[str, ...]:
    """Voices compiled into flite (`flite -lv`)."""
    out = subprocess.run([_require("flite", "flite"), "-lv"], check=True, capture_output=True, text=True)
    return tuple(out.stdout.split(":", 1)[-1].split())


def check_voice(voice: str) -> None:
    """Fail early on an unknown voice: flite silently falls back to its default voice otherwise."""
    engine, name = parse_voice(voice)
    if engine == "flite":
        if name not in flite_voices():
            raise ValueError(f"voice {voice!r}: flite has voices {list(flite_voices())}")
    else:
        _require("text2wave", "festival")


def synthesize(voice: str, text: str, *, name: str) -> np.ndarray:
    """Speak `text` with `voice`; float32 mono 16 kHz (festival HTS writes 32 kHz, flite 16 kHz)."""
    engine, vname = parse_voice(voice)
    with tempfile.TemporaryDirectory(prefix="asrprune-tts-") as tmp:
        out = Path(tmp) / "out.wav"
        txt = Path(tmp) / "text.txt"
        txt.write_text(text + "\n", encoding="utf-8")
        if engine == "festival":
            pkg = FESTIVAL_VOICE_PACKAGES.get(vname, f"providing the festival voice {vname}")
            cmd = [_require("text2wave", "festival"), "-eval", f"(voice_{vname})", "-o", str(out), str(txt)]
        else:
            pkg = "flite"
            cmd = [_require("flite", "flite"), "-voice", vname, "-f", str(txt), "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        # festival exits 0 on an unknown voice (SIOD ERROR on stderr, no file), so check both
        if proc.returncode != 0 or "SIOD ERROR" in proc.stderr or not out.exists():
            raise RuntimeError(f"{name}: {engine} voice {vname} failed (exit {proc.returncode}): "
                               f"{proc.stderr.strip()[-500:]}; is the Debian package {pkg} installed?")
        return peak_normalize(decode_audio(out.read_bytes(), name=name), PCM_PEAK)


def map_threads(fn: Callable[[Any], Any], items: Sequence[Any], threads: int) -> list[Any]:
    """Ordered map, run in `threads` threads (each TTS call is its own subprocess)."""
    if threads <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fn, items))


def voice_packages(voices: Iterable[str]) -> tuple[str, ...]:
    """Debian packages that provide `voices` (recorded in the provenance)."""
    pkgs: list[str] = []
    for v in voices:
        engine, name = parse_voice(v)
        new = ["festival", FESTIVAL_VOICE_PACKAGES.get(name, "")] if engine == "festival" else ["flite", "libflite1"]
        pkgs += [p for p in new if p and p not in pkgs]
    return tuple(pkgs)
