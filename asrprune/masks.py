"""Mask sets: bit-packed keep-masks plus a manifest, applied once to a base model (never a model copy).

On disk (docs/contracts.md): `masks.safetensors` holds, per pruned tensor, a uint8 vector of
`numpy.packbits(mask.flatten(), bitorder="little")` (1 = keep); shapes live in `manifest.json`,
which also names the base model and its `weights_sha256`, so a mask set is never applied to
weights it was not computed on.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from asrprune.components import COMPONENTS, MATRIX_COMPONENTS, classify, n_layers, select_tensors
from asrprune.flops import whisper_flops
from asrprune.io import MANIFEST_FILE, atomic_dir, read_manifest, sha256_file
from asrprune.variants import check_method

log = logging.getLogger(__name__)

FORMAT = "asrprune-bitmask-v1"
MASKS_FILE = "masks.safetensors"


def pack_mask(mask: torch.Tensor) -> torch.Tensor:
    """A boolean mask as a uint8 vector of little-endian packed bits."""
    bits = mask.detach().cpu().reshape(-1).numpy().astype(bool)
    return torch.from_numpy(np.packbits(bits, bitorder="little"))


def unpack_mask(packed: torch.Tensor, shape: list[int] | tuple[int, ...]) -> torch.Tensor:
    """Inverse of pack_mask for a tensor of `shape`."""
    numel = math.prod(shape)
    if packed.numel() != (numel + 7) // 8:
        raise ValueError(f"packed mask has {packed.numel()} bytes, a tensor of shape {list(shape)} needs {(numel + 7) // 8}")
    bits = np.unpackbits(packed.numpy(), count=numel, bitorder="little").astype(bool)
    return torch.from_numpy(bits).reshape(tuple(shape))


def tied_parameters(model: nn.Module) -> list[str]:
    """`alias -> canonical` for every parameter reachable under two names (proj_out -> embed_tokens)."""
    canonical = {id(p): n for n, p in model.named_parameters()}
    return [
        f"{n} -> {canonical[id(p)]}"
        for n, p in model.named_parameters(remove_duplicate=False)
        if canonical[id(p)] != n
    ]


def _count(numel: int, pruned: int, **extra: Any) -> dict[str, Any]:
    return {"numel": numel, "pruned": pruned, "sparsity": pruned / numel if numel else 0.0, **extra}


def build_manifest(
    model: nn.Module,
    masks: dict[str, torch.Tensor],
    *,
    variant: str,
    method: str,
    target: str | None,
    sparsity_requested: float | None,
    base_manifest: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a mask set: base model, request, realized sparsity at every level, FLOPs."""
    params = dict(model.named_parameters())
    unknown = [n for n in masks if n not in params]
    if unknown:
        raise ValueError(f"masks name tensors this model does not have: {unknown[:5]}")
    pruned = {n: int(m.numel() - int(m.sum())) for n, m in masks.items()}
    aliases: dict[str, list[str]] = {}
    tied = tied_parameters(model)
    for entry in tied:
        alias, canon = entry.split(" -> ")
        aliases.setdefault(canon, []).append(alias)

    tensors = {}
    for n, m in masks.items():
        info = classify(n)
        tensors[n] = _count(
            m.numel(), pruned[n], shape=list(m.shape), component=info.component, side=info.side, layer=info.layer,
            **({"tied": aliases[n]} if n in aliases else {}),
        )

    def rollup(names: list[str]) -> dict[str, Any]:
        return _count(sum(params[n].numel() for n in names), sum(pruned.get(n, 0) for n in names))

    by_comp: dict[str, list[str]] = {c: [] for c in COMPONENTS}
    for n in params:
        by_comp[classify(n).component].append(n)
    matrices = [n for c in MATRIX_COMPONENTS for n in by_comp[c]]
    targets: dict[str, Any] = {}
    extra = dict(extra or {})
    requested_targets = dict(extra.get("schedule") or {})
    if target and check_method(method).takes_sparsity:
        requested_targets = {target: sparsity_requested, **requested_targets}
    for t, s in requested_targets.items():
        targets[t] = {**rollup(select_tensors(list(params), t, n_layers(model), allow_empty=True)), "sparsity_requested": s}

    params_total = sum(p.numel() for p in params.values())
    with torch.no_grad():
        nonzero = sum(
            int(torch.count_nonzero(p * masks[n])) if n in masks else int(torch.count_nonzero(p))
            for n, p in params.items()
        )
    payload = sum((m.numel() + 7) // 8 for m in masks.values())
    return {
        "format": FORMAT,
        "variant": variant,
        "method": method,
        "target": target,
        "sparsity_requested": sparsity_requested,
        "base_model": base_manifest.get("name"),
        "base_weights_sha256": base_manifest.get("weights_sha256"),
        "tensors": tensors,
        "components": {c: rollup(ns) for c, ns in by_comp.items() if ns},
        "targets": targets,
        "overall": {"all_params": rollup(list(params)), "prunable_matrices": rollup(matrices)},
        "params_total": params_total,
        "params_nonzero": nonzero,
        "tied": tied,
        "flops": whisper_flops(model, masks),
        "mask_payload_bytes": payload,
        "checkpoint_float32_bytes": 4 * params_total,
        "details": extra,
    }


def save_mask_set(masks: dict[str, torch.Tensor], manifest: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Write masks.safetensors + manifest.json into out_dir atomically; return the manifest as written.

    The manifest gains `mask_bytes` (the file's real size) and its fraction of the float32 checkpoint.
    """
    for n, m in masks.items():
        shape = manifest.get("tensors", {}).get(n, {}).get("shape")
        if shape != list(m.shape):
            raise ValueError(f"manifest shape of {n!r} is {shape}, the mask's {list(m.shape)}")
    manifest = dict(manifest)
    with atomic_dir(out_dir) as tmp:
        path = Path(tmp) / MASKS_FILE
        save_file({n: pack_mask(m) for n, m in masks.items()}, str(path), metadata={"format": FORMAT})
        manifest["mask_bytes"] = path.stat().st_size
        manifest["masks_sha256"] = sha256_file(path)  # binds the manifest to these masks (check_mask_file)
        ckpt = manifest.get("checkpoint_float32_bytes")
        manifest["mask_bytes_fraction"] = manifest["mask_bytes"] / ckpt if ckpt else None
        (Path(tmp) / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return manifest


def check_mask_file(mask_dir: str | Path, manifest: dict[str, Any]) -> None:
    """The masks file has the sha256 its manifest records: an edited or replaced `masks.safetensors`
    is refused, naming the file (the table reports the manifest's sparsity, so they must agree).

    Mask sets written before the hash was recorded carry none; they are read with a warning.
    """
    path = Path(mask_dir) / MASKS_FILE
    want = manifest.get("masks_sha256")
    if want is None:
        log.warning("%s: its manifest records no masks_sha256 (written before masks were bound to their content); "
                    "delete the mask set to rebuild it with one", path)
        return
    got = sha256_file(path)
    if got != want:
        raise ValueError(f"{path}: sha256 {got} differs from {want} recorded in {Path(mask_dir) / MANIFEST_FILE}; "
                         "expected the masks the prune rule wrote (the file was edited or replaced: delete the mask "
                         "set to recompute it)")


def read_mask_manifest(mask_dir: str | Path, check_hash: bool = True) -> dict[str, Any]:
    """A mask set's manifest, after checking that both files exist and the masks match its hash."""
    mask_dir = Path(mask_dir)
    for name in (MANIFEST_FILE, MASKS_FILE):
        if not (mask_dir / name).is_file():
            raise FileNotFoundError(f"{mask_dir / name}: no such file; expected a mask set written by the prune rule "
                                    f"({MANIFEST_FILE} + {MASKS_FILE})")
    manifest = read_manifest(mask_dir, "a mask-set manifest")
    if not isinstance(manifest.get("tensors"), dict):
        raise ValueError(f"{mask_dir / MANIFEST_FILE}: has no 'tensors' mapping; expected a mask-set manifest")
    if check_hash:
        check_mask_file(mask_dir, manifest)
    return manifest


def load_mask_set(mask_dir: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a mask set: boolean keep-masks by tensor name, and its manifest."""
    mask_dir = Path(mask_dir)
    manifest = read_mask_manifest(mask_dir, check_hash=False)
    try:
        packed = load_file(str(mask_dir / MASKS_FILE))
    except Exception as exc:  # safetensors raises its own SafetensorError (not an OSError) on corrupt files
        raise ValueError(f"{mask_dir / MASKS_FILE}: not a readable safetensors file ({exc}); "
                         "expected the bit-packed masks the prune rule wrote") from exc
    check_mask_file(mask_dir, manifest)  # after reading: a truncated file gets the clearer error above
    masks = {}
    for n, p in packed.items():
        if n not in manifest["tensors"]:
            raise ValueError(f"{mask_dir}: mask {n!r} has no entry (shape) in manifest.json")
        try:
            masks[n] = unpack_mask(p, manifest["tensors"][n]["shape"])
        except ValueError as exc:
            raise ValueError(f"{mask_dir}: mask {n!r}: {exc}") from None
    return masks, manifest


def check_base(manifest: dict[str, Any], base_manifest: dict[str, Any]) -> None:
    """Refuse a mask set computed on other weights than the base model's."""
    want, have = manifest.get("base_weights_sha256"), base_manifest.get("weights_sha256")
    if want != have:
        raise ValueError(
            f"mask set {manifest.get('variant')!r} was computed on model {manifest.get('base_model')!r} "
            f"(weights_sha256 {want}), but the base model is {base_manifest.get('name')!r} "
            f"(weights_sha256 {have}); recompute the masks for this model"
        )


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the pruned weights in place; unknown names and shape mismatches are refused before any change."""
    params = dict(model.named_parameters(remove_duplicate=False))
    for n, m in masks.items():
        if n not in params:
            raise ValueError(f"mask for {n!r}, but the model has no such tensor")
        if tuple(params[n].shape) != tuple(m.shape):
            raise ValueError(f"mask for {n!r} has shape {tuple(m.shape)}, the model's tensor {tuple(params[n].shape)}")
    with torch.no_grad():
        for n, m in masks.items():
            params[n].mul_(m.to(device=params[n].device, dtype=params[n].dtype))


def apply_mask_set(model: nn.Module, mask_dir: str | Path, base_manifest: dict[str, Any]) -> dict[str, Any]:
    """Load a mask set, check it belongs to this base model, apply it in place; return its manifest."""
    masks, manifest = load_mask_set(mask_dir)
    check_base(manifest, base_manifest)
    apply_masks(model, masks)
    return manifest


def export_variant(
    model: nn.Module, processor: Any, mask_dir: str | Path, base_manifest: dict[str, Any], out_dir: str | Path
) -> dict[str, Any]:
    """A standalone HF directory of a pruned variant (dense safetensors) with a manifest naming its mask set."""
    mask_dir = Path(mask_dir)
    mask_manifest = apply_mask_set(model, mask_dir, base_manifest)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        if processor is not None:
            processor.save_pretrained(tmp)
        files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(Path(tmp).rglob("*")) if p.is_file()}
        manifest = {
            "name": f"{base_manifest.get('name')}+{mask_manifest['variant']}",
            "source": {"kind": "export", "base_model": base_manifest.get("name"), "variant": mask_manifest["variant"]},
            "files": files,
            "weights_sha256": files.get("model.safetensors"),
            "n_params": mask_manifest.get("params_total"),
            "params_nonzero": mask_manifest.get("params_nonzero"),
            "multilingual": base_manifest.get("multilingual"),
            "config": base_manifest.get("config"),
            "tied": mask_manifest.get("tied"),
            "base_model": base_manifest.get("name"),
            "base_weights_sha256": base_manifest.get("weights_sha256"),
            "mask_set": {
                "path": str(mask_dir),
                "manifest_sha256": sha256_file(mask_dir / MANIFEST_FILE),
                "masks_sha256": sha256_file(mask_dir / MASKS_FILE),
                "variant": mask_manifest["variant"],
                "overall": mask_manifest.get("overall"),
            },
        }
        (Path(tmp) / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return manifest
