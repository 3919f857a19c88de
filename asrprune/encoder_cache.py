"""An on-disk cache of Whisper encoder hidden states, shared by the decode jobs of a pruning grid.

Why: the encoder reads a fixed 30 s window, so it costs the same for every utterance and is most of
the decoding time on a CPU (~63 % for tiny.en). Most variants of a grid leave all or most of the encoder
untouched: every decoder-side target, and encoder targets restricted to late layers. Their encoder
states are the base model's up to the first layer they change, so one job computes those states and
every other job with the same prefix reads them back.

Boundaries and the resume point
-------------------------------
Boundary ``b`` of an encoder with ``L`` blocks is the hidden state *entering* block ``b``: ``b = 0``
is the output of the convolution stem plus positions, ``b = L`` the output of the last block, before
the final ``layer_norm``. The *resume boundary* ``k`` of a mask set (``resume_boundary``) is the first
block it changes: ``L`` when it changes nothing in the encoder or only ``model.encoder.layer_norm``
(decoder-only variants), ``min(i)`` over the pruned ``model.encoder.layers.{i}.*`` tensors, and ``0``
when it changes the stem (``conv1``/``conv2``/``embed_positions``). A decode job with ``k >= 1``
reads boundary ``k`` and runs only blocks ``k..L-1`` and ``layer_norm`` (``asrprune.decode``).

Which boundaries are stored: exactly the ones the jobs ask for. Each job needs one boundary, its own
``k``; the first job that needs ``(k, dataset)`` writes it and every later job with the same ``k``
reads it. A grid with decoder-side targets and encoder targets over the last third therefore stores
two boundaries per test set (``L`` and ``2L/3``), never all ``L + 1`` (which would be
``(L + 1) x 1500 x d_model x 4`` bytes per utterance: 11.5 MB for tiny, 60 MB for small). ``k = 0`` is
never stored: resuming there would skip only the convolution stem (~5 % of the encoder) for a full
boundary of disk. No coordination with the planner is needed and nothing is stored that no job reads.

Key
---
``sha256`` of the JSON of: this format's version; the base model's ``weights_sha256`` (the prefix of a
variant before ``k`` *is* the base model's: a mask set that changed a block before ``k`` would have a
smaller ``k``, so a variant's own masks never enter the key and variants with equal ``k`` share an
entry) and the sha256 of its ``config.json``; ``k`` and ``L``; the dataset file's ``sha256``; the
feature extractor's settings; how utterances are ordered and batched (the batch size); and
everything that can change the bits of a float computation: the transformers version and the
attention implementation (they define the encoder blocks' code), device type, dtype, torch version,
CPU instruction set and thread count. An entry whose key lacks any of these (an older format) is
never found, so never served. ``k`` comes from the masks themselves (``changed_tensors``). Stored
tensors are the exact values computed (float32 on CPU, the GPU dtype on a GPU), one file per batch,
so a resumed encoder sees bit-identical inputs with the same batch shapes and transcripts are
identical to recomputing (``tests/test_encoder_cache.py`` checks it on the real tiny.en).

Disk layout and cost
--------------------
``{root}/{key}/meta.json`` + ``b00000.safetensors``, ``b00001.safetensors``, ... (one
``[batch, 1500, d_model]`` tensor ``hidden`` each, utterance ids in the file's metadata). One entry
costs ``n_utts x 1500 x d_model x 4`` bytes: 2.2 MiB per utterance for tiny (d 384), 2.9 MiB for base,
4.4 MiB for small. The default config stores two boundaries per test set (its decoder variants read
boundary L = 4, its ``enc.last_third`` variants boundary 3, both written by the first job that runs
the encoder, see ``CacheSpec.also_store``; a target that changes block 0, such as ``enc_ffn``,
computes the encoder in full): 3 sets x 2 x 48 utterances x 2.2 MiB = 634 MiB; a test set of 2,000 utterances costs 8.6 GiB per boundary for small. The total is capped at ``execution.encoder_cache_mb``: before and after writing
an entry the least recently used entries (by the entry directory's mtime, which every read refreshes)
are removed until the published entries fit; an entry larger than the whole cap is never written.
The entry being written is not counted until it is published, so usage can exceed the cap by one
entry while two jobs write at once.

Concurrency and atomicity
-------------------------
A job that misses claims the entry by creating ``{key}.partial/`` (``mkdir`` is atomic: exactly one
job wins) and records its host and pid in ``owner.json``. It writes every batch file atomically
(``asrprune.io.atomic_path``), refreshing ``owner.json``'s mtime as a heartbeat, then ``meta.json``,
then renames the directory to ``{key}/``: an entry is either complete or absent. Other jobs that need
the same entry meanwhile *follow* it: they read each batch as soon as its file appears (in the partial
or the published directory), so nobody computes the same states twice. A writer that is killed leaves
only ``{key}.partial/``; a follower or a later claimant treats it as dead when its pid is gone (same
host) or its heartbeat is older than ``stale_s``, renames it away (one rename wins) and deletes it.
Every failure of the cache (a vanished batch, a full disk, an evicted entry) makes a job compute
the states itself: the cache can make decoding faster, never wrong or stuck.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from asrprune.components import target_tensors
from asrprune.io import atomic_path

log = logging.getLogger(__name__)

FORMAT = "asrprune-encoder-cache-v2"  # v2: keys name the transformers version, config.json and attention
STALE_S = 300.0  # a writer silent for this long is taken for dead
POLL_S = 0.1
META_FILE = "meta.json"
OWNER_FILE = "owner.json"
_ENTRY_RE = re.compile(r"^[0-9a-f]{64}$")
_ENC_LAYER_RE = re.compile(r"^model\.encoder\.layers\.(\d+)\.")


# ------------------------------------------------------------------------------------------------
# What a mask set leaves untouched, and the key


def resume_boundary(changed: Iterable[str], n_layers: int) -> int:
    """The boundary a variant resumes from, given the names of the tensors its masks change.

    ``n_layers`` (= L) for no encoder change or only the final ``model.encoder.layer_norm``; the
    smallest changed block index for changes inside ``model.encoder.layers``; 0 for the stem (then
    nothing is reused).
    """
    k = n_layers
    for name in changed:
        if not name.startswith("model.encoder."):
            continue
        m = _ENC_LAYER_RE.match(name)
        if m:
            k = min(k, int(m[1]))
        elif not name.startswith("model.encoder.layer_norm."):
            return 0  # conv1, conv2, embed_positions: nothing before the first block is reusable
    return k


def target_boundaries(model: Any, targets: Iterable[str]) -> tuple[int, ...]:
    """Boundaries strictly inside the encoder that variants pruning within these targets resume from.

    A variant changes only tensors of its target, so it resumes at its target's boundary or later;
    decoder-only targets (boundary L) and those reaching the stem (0) add nothing.
    """
    n_layers = model.config.encoder_layers
    found = {resume_boundary(target_tensors(model, t), n_layers) for t in targets}
    return tuple(sorted(k for k in found if 0 < k < n_layers))


def changed_tensors(masks: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the tensors a mask set changes, read from the keep-masks themselves.

    A mask with any zero changes its tensor; one that keeps every weight changes nothing. The
    manifest's counts are not consulted: a manifest that undercounts would let a variant resume
    after a block its masks change, and decode with the base model's states for that block.
    """
    return sorted(n for n, m in masks.items() if not bool(m.all()))


def feature_settings(feature_extractor: Any) -> dict[str, Any]:
    """The feature extractor's settings as JSON (arrays replaced by their sha256)."""
    out = {}
    for name, value in sorted(feature_extractor.to_dict().items()):
        if hasattr(value, "tobytes"):
            value = "sha256:" + hashlib.sha256(value.tobytes()).hexdigest()
        out[name] = value
    return out


def numeric_context(device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Everything besides the inputs and the model that can change the bits of the encoder's float computation."""
    import transformers

    ctx: dict[str, Any] = {
        "device": device.type,
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    if device.type == "cpu":
        ctx["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        ctx["threads"] = torch.get_num_threads()
    elif device.type == "cuda":
        ctx["gpu"] = torch.cuda.get_device_name(device)
    return ctx


def cache_key(fields: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the key fields (see the module docstring)."""
    blob = json.dumps({"format": FORMAT, **fields}, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def entry_bytes(n_utts: int, n_positions: int, d_model: int, dtype: torch.dtype) -> int:
    """Bytes of one entry's tensors (the files add a few hundred bytes each)."""
    return n_utts * n_positions * d_model * torch.empty((), dtype=dtype).element_size()


# ------------------------------------------------------------------------------------------------
# Storage


def _batch_name(i: int) -> str:
    return f"b{i:05d}.safetensors"


def _dir_bytes(path: Path) -> int:
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for e in os.scandir(path):
            with contextlib.suppress(FileNotFoundError):
                total += e.stat().st_size
    return total


def _load_batch(path: Path, ids: list[str] | None) -> torch.Tensor:
    """One batch file's tensor (a fresh, aligned allocation); refuses a file written for other utterances."""
    with safe_open(str(path), framework="pt") as f:
        stored = json.loads((f.metadata() or {}).get("ids", "null"))
        if ids is not None and stored != ids:
            raise ValueError(f"{path}: cached for utterances {stored[:3]}..., expected {ids[:3]}...")
        return f.get_tensor("hidden")


def _rmtree_atomic(path: Path) -> bool:
    """Rename `path` aside (one rename wins a race) and delete it; False if it was already gone."""
    trash = path.parent / f".trash-{uuid.uuid4().hex}"
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return False
    shutil.rmtree(trash, ignore_errors=True)
    return True


@dataclass
class EncoderCache:
    """The cache directory (``results/cache/encoder``) and its size cap; see the module docstring."""

    root: Path
    cap_bytes: int
    stale_s: float = STALE_S
    poll_s: float = POLL_S

    @classmethod
    def from_mb(cls, root: str | Path, cap_mb: float, **kw: Any) -> "EncoderCache":
        return cls(Path(root), int(cap_mb * 2**20), **kw)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    # -- entries --------------------------------------------------------------------------------

    def final_dir(self, key: str) -> Path:
        return self.root / key

    def partial_dir(self, key: str) -> Path:
        return self.root / f"{key}.partial"

    def entries(self) -> list[tuple[float, int, Path]]:
        """Published entries as (mtime, bytes, path), least recently used first."""
        out = []
        for e in os.scandir(self.root):
            if e.is_dir() and _ENTRY_RE.match(e.name):
                with contextlib.suppress(FileNotFoundError):
                    out.append((e.stat().st_mtime, _dir_bytes(Path(e.path)), Path(e.path)))
        return sorted(out)

    def usage_bytes(self) -> int:
        return sum(b for _, b, _ in self.entries())

    def touch(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.final_dir(key))

    def fits(self, nbytes: int) -> bool:
        return 0 < nbytes <= self.cap_bytes

    def evict(self, need_bytes: int = 0, keep: Iterable[str] = ()) -> list[str]:
        """Remove least recently used entries until published entries + `need_bytes` fit the cap.

        Also removes leftovers: partial entries of dead writers and renamed-away trash.
        """
        keep = set(keep)
        for e in list(os.scandir(self.root)):
            p = Path(e.path)
            if e.name.startswith(".trash-"):
                shutil.rmtree(p, ignore_errors=True)
            elif e.name.endswith(".partial") and not self._writer_alive(p):
                log.info("encoder cache: removing %s left by a dead writer", p.name)
                _rmtree_atomic(p)
        entries = self.entries()
        total = sum(b for _, b, _ in entries)
        removed = []
        for _, size, path in entries:
            if total + need_bytes <= self.cap_bytes:
                break
            if path.name in keep:
                continue
            if _rmtree_atomic(path):
                removed.append(path.name)
                log.info("encoder cache: evicted %s (%.1f MB, least recently used)", path.name[:12], size / 2**20)
            total -= size
        return removed

    # -- writer liveness ------------------------------------------------------------------------

    def _writer_alive(self, partial: Path) -> bool:
        """Whether the job writing `partial` still runs: its pid (same host) and its heartbeat."""
        owner_path = partial / OWNER_FILE
        try:
            beat = owner_path.stat().st_mtime
            owner = json.loads(owner_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError, NotADirectoryError):
            try:
                beat, owner = partial.stat().st_mtime, {}
            except FileNotFoundError:
                return False
        if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
            try:
                os.kill(owner["pid"], 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                pass
        return time.time() - beat < self.stale_s

    # -- open / claim ---------------------------------------------------------------------------

    def _published(self, key: str, batches: list[list[str]]) -> "EntryReader | None | bool":
        """A reader of the published entry; None if it holds other batches; False if none is published."""
        try:
            meta = json.loads((self.final_dir(key) / META_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return False
        if meta.get("batches") != batches:
            log.warning("encoder cache: entry %s holds other batches; not using it", key[:12])
            return None
        self.touch(key)
        return EntryReader(self, key, batches, published=True)

    def find(self, key: str, batches: list[list[str]]) -> "EntryReader | None":
        """A reader of an entry that is published or being written by a live writer; claims nothing."""
        published = self._published(key, batches)
        if published is not False:
            return published
        partial = self.partial_dir(key)
        if partial.is_dir() and self._writer_alive(partial):
            return EntryReader(self, key, batches, published=False)
        return None

    def open(self, key: str, batches: list[list[str]], need_bytes: int = 0) -> "EntryReader | EntryWriter | None":
        """A reader (published or being written by another job), a writer (this job claimed it), or None.

        A writer first evicts least recently used entries to make room for `need_bytes`. None means:
        a published entry does not match `batches` (then it is left alone and this job computes for
        itself).
        """
        while True:
            published = self._published(key, batches)
            if published is not False:
                return published
            partial = self.partial_dir(key)
            try:
                partial.mkdir()
            except FileExistsError:
                if self._writer_alive(partial):
                    return EntryReader(self, key, batches, published=False)
                log.info("encoder cache: taking over %s from a dead writer", partial.name)
                _rmtree_atomic(partial)
                continue
            writer = EntryWriter(self, key, batches, partial)
            if need_bytes:
                self.evict(need_bytes, keep={key})
            return writer


class EntryWriter:
    """Writes one entry batch by batch into ``{key}.partial/`` and publishes it by one rename.

    Every step first checks that the partial directory is still this writer's (a writer silent for
    ``stale_s`` may have been taken over): a writer that lost it raises, and never touches the new
    owner's files.
    """

    def __init__(self, cache: EncoderCache, key: str, batches: list[list[str]], partial: Path):
        self.cache, self.key, self.batches, self.dir = cache, key, batches, partial
        self.token = uuid.uuid4().hex
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "token": self.token, "started": time.time()}
        with atomic_path(self.dir / OWNER_FILE) as tmp:
            tmp.write_text(json.dumps(owner))

    def owns(self) -> bool:
        try:
            return json.loads((self.dir / OWNER_FILE).read_text()).get("token") == self.token
        except (OSError, json.JSONDecodeError):
            return False

    def _check(self) -> None:
        if not self.owns():
            raise FileNotFoundError(f"encoder cache: {self.dir} is no longer this job's (taken over or removed)")

    def put(self, i: int, hidden: torch.Tensor) -> None:
        """Write batch `i` atomically (the file appears whole or not at all) and beat the heart."""
        ids = self.batches[i]
        if hidden.shape[0] != len(ids):
            raise ValueError(f"batch {i} has {len(ids)} utterances, the tensor {hidden.shape[0]}")
        self._check()
        with atomic_path(self.dir / _batch_name(i)) as tmp:
            save_file({"hidden": hidden.detach().contiguous().cpu()}, str(tmp), metadata={"ids": json.dumps(ids)})
        os.utime(self.dir / OWNER_FILE)

    def publish(self, fields: dict[str, Any] | None = None) -> bool:
        """Write meta.json and rename the entry into place; evict to the cap. False if another job won."""
        self._check()
        meta = {"format": FORMAT, "key": self.key, "fields": fields or {}, "batches": self.batches}
        with atomic_path(self.dir / META_FILE) as tmp:
            tmp.write_text(json.dumps(meta, sort_keys=True, default=str))
        try:
            os.rename(self.dir, self.cache.final_dir(self.key))
        except OSError:  # a published entry is already there (another writer took over and finished)
            self.abort()
            return False
        (self.cache.final_dir(self.key) / OWNER_FILE).unlink(missing_ok=True)
        self.cache.evict(keep={self.key})
        return True

    def abort(self) -> None:
        """Remove the partial entry if it is still this writer's."""
        if self.owns():
            _rmtree_atomic(self.dir)


class EntryReader:
    """Reads batches of a published entry, or of one another job is writing (waiting for each file)."""

    def __init__(self, cache: EncoderCache, key: str, batches: list[list[str]], published: bool):
        self.cache, self.key, self.batches, self.published = cache, key, batches, published

    def get(self, i: int, device: torch.device | str = "cpu") -> torch.Tensor | None:
        """Batch `i`'s hidden states, or None when they cannot be had (the caller then computes them)."""
        final = self.cache.final_dir(self.key) / _batch_name(i)
        partial_dir = self.cache.partial_dir(self.key)
        partial = partial_dir / _batch_name(i)
        ids = self.batches[i]
        while True:
            for path in (final, partial):
                hidden = self._try_load(path, ids)
                if hidden is not False:
                    return None if hidden is None else hidden.to(device)
            if (final.parent / META_FILE).is_file():  # published meanwhile: the file must be there now
                hidden = self._try_load(final, ids)
                if hidden is not False:
                    return None if hidden is None else hidden.to(device)
                log.warning("encoder cache: %s lacks %s (evicted?); computing instead", self.key[:12], final.name)
                return None
            if not self.cache._writer_alive(partial_dir):
                if (final.parent / META_FILE).is_file():
                    continue
                log.warning("encoder cache: the writer of %s stopped; computing instead", self.key[:12])
                return None
            time.sleep(self.cache.poll_s)

    def _try_load(self, path: Path, ids: list[str]) -> "torch.Tensor | None | bool":
        """The tensor; False if the file is not there (yet); None if it is unusable."""
        try:
            hidden = _load_batch(path, ids)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except Exception as err:  # noqa: BLE001 - a damaged file is a miss, never a crash
            log.warning("encoder cache: unreadable %s (%s); computing instead", path, err)
            return None
        self.cache.touch(self.key)
        return hidden
