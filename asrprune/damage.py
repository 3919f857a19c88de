"""Optimal Brain Damage predicted loss increase of a pruning mask: ½ Σ F·w² over the removed weights.

With a diagonal Fisher F (mean over utterances of squared per-utterance gradients of the sequence
NLL, see asrprune.sensitivity) the second-order term of the loss change when weight w goes to zero
is ½ F w²; summed over what a mask removes it predicts the damage in nats per utterance (the
first-order term is dropped, as in OBD: at a trained optimum its expectation is ~0).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import torch

log = logging.getLogger(__name__)

PREDICTED_COLUMNS = ["model", "variant", "method", "target", "sparsity", "predicted_damage", "n_pruned"]


def _saliency(f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """½ F w² per element, in float64 so that sums over 10^8 weights stay exact enough."""
    if tuple(f.shape) != tuple(w.shape):
        raise ValueError(f"Fisher shape {tuple(f.shape)} differs from the weight's {tuple(w.shape)}")
    return 0.5 * f.detach().double() * w.detach().double() ** 2


def predicted_damage_per_tensor(
    fisher: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], removed: dict[str, torch.Tensor]
) -> dict[str, float]:
    """OBD damage per tensor of the weights `removed` marks True (True = pruned, the inverse of a keep-mask)."""
    out = {}
    for name, rm in removed.items():
        if name not in fisher:
            raise ValueError(f"the Fisher has no entry for {name!r}; was it computed for this model?")
        if name not in weights:
            raise ValueError(f"no weight named {name!r}")
        if tuple(rm.shape) != tuple(weights[name].shape):
            raise ValueError(f"mask of {name!r} has shape {tuple(rm.shape)}, the weight {tuple(weights[name].shape)}")
        out[name] = float(_saliency(fisher[name], weights[name])[rm.bool()].sum())
    return out


def predicted_damage(
    fisher: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], removed: dict[str, torch.Tensor]
) -> float:
    """Total OBD damage ½ Σ F·w² over the weights `removed` marks True."""
    return sum(predicted_damage_per_tensor(fisher, weights, removed).values())


def magnitude_order_cumsum(
    fisher: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], tensor_names: Sequence[str]
) -> torch.Tensor:
    """Cumulative damage [n + 1] (float64) of pruning the k smallest |w| pooled over the tensors, k = 0..n.

    The order is the one pooled magnitude pruning uses (asrprune.methods.lowest_k): |w| in float32,
    ties by flat index in model order, i.e. a stable sort.
    """
    if not tensor_names:
        raise ValueError("no tensor to pool")
    w = torch.cat([weights[t].detach().reshape(-1).float() for t in tensor_names])
    s = torch.cat([_saliency(fisher[t], weights[t]).reshape(-1) for t in tensor_names])
    order = torch.sort(w.abs(), stable=True).indices
    return torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(s[order], 0)])


def magnitude_damage_curve(
    fisher: dict[str, torch.Tensor],
    weights: dict[str, torch.Tensor],
    tensor_names: Sequence[str],
    sparsities: Iterable[float],
) -> dict[float, float]:
    """Damage of pooled magnitude pruning of the tensors at each sparsity (fractions in [0, 1]).

    One sort for all sparsities; pruned counts are round(s·n), as asrprune.methods.n_to_prune.
    """
    cum = magnitude_order_cumsum(fisher, weights, tensor_names)
    n = cum.numel() - 1
    out = {}
    for s in sparsities:
        if not 0.0 <= float(s) <= 1.0:
            raise ValueError(f"sparsity must be a fraction in [0, 1], got {s!r}")
        out[s] = float(cum[round(float(s) * n)])
    return out


def _model_name(model_dir: Path) -> str:
    manifest = model_dir / "manifest.json"
    if manifest.is_file():
        return str(json.loads(manifest.read_text()).get("name") or model_dir.name)
    return model_dir.name


TIED = {"proj_out.weight": "model.decoder.embed_tokens.weight"}


def _weights_by_name(model_dir: Path) -> dict[str, torch.Tensor]:
    """The float32 weights of a prepared model directory, tied aliases included (no model built)."""
    from safetensors.torch import load_file

    weights = load_file(str(model_dir / "model.safetensors"))
    for alias, canonical in TIED.items():
        if alias not in weights and canonical in weights:
            weights[alias] = weights[canonical]
    return weights


def _merge_aliases(removed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Masks naming both a tied alias and its canonical tensor count each weight once (their union)."""
    out = dict(removed)
    for alias, canonical in TIED.items():
        if alias in out:
            rm = out.pop(alias)
            out[canonical] = out[canonical] | rm if canonical in out else rm
    return out


def run_predict(model_dir: str | Path, fisher_path: str | Path, mask_dirs: Sequence[str | Path], out_path: str | Path) -> pd.DataFrame:
    """Predicted damage of every mask set → predicted.parquet (columns PREDICTED_COLUMNS); returns the table."""
    from safetensors.torch import load_file

    from asrprune.io import write_parquet
    from asrprune.masks import load_mask_set

    model_dir = Path(model_dir)
    weights = _weights_by_name(model_dir)
    fisher = load_file(str(fisher_path))
    name = _model_name(model_dir)
    rows = []
    for d in mask_dirs:
        keep, manifest = load_mask_set(d)
        removed = _merge_aliases({n: ~m for n, m in keep.items()})
        rows.append(
            {
                "model": name,
                "variant": manifest.get("variant") or Path(d).name,
                "method": manifest.get("method"),
                "target": manifest.get("target"),
                "sparsity": manifest.get("sparsity_requested"),
                "predicted_damage": predicted_damage(fisher, weights, removed),
                "n_pruned": int(sum(int(r.sum()) for r in removed.values())),
            }
        )
        log.info("%s: predicted damage %.6g over %d pruned weights", rows[-1]["variant"], rows[-1]["predicted_damage"], rows[-1]["n_pruned"])
    table = pd.DataFrame(rows, columns=PREDICTED_COLUMNS)
    table["sparsity"] = pd.to_numeric(table["sparsity"], errors="coerce").astype("float64")
    table = table.sort_values(["variant"], kind="stable").reset_index(drop=True)
    write_parquet(table, out_path, metadata={"damage": {"formula": "0.5 * sum(F * w^2) over pruned weights", "fisher": str(fisher_path)}})
    return table
