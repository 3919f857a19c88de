"""Read CTranslate2 `model.bin` files: every variable as a tensor, every alias (the conversion of a
Whisper spec to Hugging Face tensors and configs: asrprune.ct2_convert).

The binary layout (little-endian, checked against CTranslate2 4.x files, binary version 6):

    u32 binary_version | string spec_name | u32 spec_revision | u32 n_variables
    n_variables x ( string name | u8 rank | rank x u32 dim | u8 dtype | u32 n_bytes | n_bytes data )
    u32 n_aliases | n_aliases x ( string alias | string variable_name )

where `string` is a u16 byte length that counts a trailing NUL, then the bytes (NUL included).
Scalars (rank 0) carry flags such as `decoder/num_heads` (int16) or `decoder/activation` (int8).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

DTYPES: dict[int, torch.dtype] = {
    0: torch.float32,
    1: torch.int8,
    2: torch.int16,
    3: torch.int32,
    4: torch.float16,
    5: torch.bfloat16,
}
SUPPORTED_BINARY_VERSIONS: tuple[int, ...] = (6,)
@dataclass(frozen=True)
class CT2Model:
    """The parsed contents of a CTranslate2 `model.bin` (tensors are views of one shared buffer)."""

    source: str
    binary_version: int
    spec: str
    revision: int
    variables: dict[str, torch.Tensor]
    aliases: dict[str, str]

    def __getitem__(self, name: str) -> torch.Tensor:
        """Return a variable by name, following an alias if `name` is one."""
        return self.variables[self.aliases.get(name, name)]

    def __contains__(self, name: object) -> bool:
        return name in self.variables or name in self.aliases


class _Reader:
    """Bounds-checked little-endian reads over the concatenation of one or more files."""

    def __init__(self, parts: Sequence[Path]) -> None:
        self.parts = [Path(p) for p in parts]
        self.sizes = [p.stat().st_size for p in self.parts]
        self.data = bytearray()
        for p in self.parts:
            self.data += p.read_bytes()
        self.offset = 0

    def where(self, offset: int) -> str:
        """Name the file (part) that holds `offset` and the offset inside it."""
        start = 0
        for path, size in zip(self.parts, self.sizes):
            if offset < start + size:
                break
            start += size
        else:  # past the end: report it against the last part
            start -= self.sizes[-1]
        inner = f"{path} at offset {offset - start}"
        if len(self.parts) > 1:
            inner += f" (offset {offset} of the {len(self.parts)} concatenated parts)"
        return inner

    def take(self, n: int, what: str) -> memoryview:
        """Return the next `n` bytes, or raise a ValueError that says where the data ran out."""
        available = len(self.data) - self.offset
        if n > available:
            raise ValueError(
                f"{self.where(self.offset)}: truncated or corrupt CTranslate2 model while reading {what}: "
                f"expected {n} bytes, got {available}"
            )
        view = memoryview(self.data)[self.offset : self.offset + n]
        self.offset += n
        return view

    def unpack(self, fmt: str, what: str) -> int:
        """Read one little-endian integer of struct format `fmt`."""
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        """Read a u16-length, NUL-terminated UTF-8 string."""
        start = self.offset
        n = self.unpack("H", f"the length of {what}")
        raw = bytes(self.take(n, what))
        if n == 0 or raw[-1] != 0:
            raise ValueError(f"{self.where(start)}: corrupt CTranslate2 model: {what} is not NUL-terminated")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{self.where(start)}: corrupt CTranslate2 model: {what} is not UTF-8") from err


def read_model_bin(parts: str | Path | Sequence[str | Path]) -> CT2Model:
    """Parse a CTranslate2 `model.bin`, given as one path or as parts to concatenate in order."""
    paths = [Path(parts)] if isinstance(parts, (str, Path)) else [Path(p) for p in parts]
    if not paths:
        raise ValueError("read_model_bin: no model.bin parts given")
    r = _Reader(paths)
    version = r.unpack("I", "the binary version")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise ValueError(
            f"{r.where(0)}: unsupported CTranslate2 binary version {version} "
            f"(supported: {SUPPORTED_BINARY_VERSIONS})"
        )
    spec = r.string("the spec name")
    revision = r.unpack("I", "the spec revision")
    n_vars = r.unpack("I", "the variable count")
    variables: dict[str, torch.Tensor] = {}
    for i in range(n_vars):
        name = r.string(f"the name of variable {i}")
        rank = r.unpack("B", f"the rank of {name}")
        shape = tuple(r.unpack("I", f"dimension {d} of {name}") for d in range(rank))
        code = r.unpack("B", f"the dtype of {name}")
        if code not in DTYPES:
            raise ValueError(f"{r.where(r.offset - 1)}: corrupt CTranslate2 model: unknown dtype {code} of {name}")
        dtype = DTYPES[code]
        n_bytes = r.unpack("I", f"the byte count of {name}")
        expected = math.prod(shape) * dtype.itemsize
        if n_bytes != expected:
            raise ValueError(
                f"{r.where(r.offset - 4)}: corrupt CTranslate2 model: {name} {list(shape)} {dtype} needs "
                f"{expected} bytes, header says {n_bytes}"
            )
        data = r.take(n_bytes, f"the data of {name}")
        # Views into the one buffer: nothing is copied until the conversion casts to float32.
        tensor = torch.frombuffer(data, dtype=dtype) if n_bytes else torch.empty(0, dtype=dtype)
        variables[name] = tensor.reshape(shape)
    aliases: dict[str, str] = {}
    for i in range(r.unpack("I", "the alias count")):
        alias = r.string(f"alias {i}")
        aliases[alias] = r.string(f"the target of alias {alias}")
        if aliases[alias] not in variables:
            raise ValueError(f"{r.where(r.offset)}: alias {alias} points to missing variable {aliases[alias]}")
    if r.offset != len(r.data):
        raise ValueError(
            f"{r.where(r.offset)}: corrupt CTranslate2 model: {len(r.data) - r.offset} unexpected bytes after the "
            f"aliases (expected the file to end)"
        )
    source = "+".join(str(p) for p in paths)
    return CT2Model(source, version, spec, revision, variables, aliases)
