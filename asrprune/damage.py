"""Optimal Brain Damage predicted loss increase of a pruning mask: ½ Σ F·w² over the removed weights.

With a diagonal Fisher F (mean over utterances of squared per-utterance gradients of the sequence
NLL, see asrprune.sensitivity) the second-order term of the loss change when weight w goes to zero
is ½ F w²; summed over what a mask removes it predicts the damage in nats per utterance (the
first-order term is dropped, as in OBD: at a trained optimum its expectation is ~0).
The predict_damage stage (asrprune.stages.predict_damage) reads the weights, the Fisher and the mask
sets and writes predicted.parquet; nothing here touches a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

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


TIED = {"proj_out.weight": "model.decoder.embed_tokens.weight"}


def with_tied_aliases(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`weights` (a checkpoint's tensors by name) with each tied alias added under its own name too."""
    for alias, canonical in TIED.items():
        if alias not in weights and canonical in weights:
            weights[alias] = weights[canonical]
    return weights


def merge_aliases(removed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Masks naming both a tied alias and its canonical tensor count each weight once (their union)."""
    out = dict(removed)
    for alias, canonical in TIED.items():
        if alias in out:
            rm = out.pop(alias)
            out[canonical] = out[canonical] | rm if canonical in out else rm
    return out
