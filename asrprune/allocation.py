"""Fisher-guided allocation: how many weights each unit of a group gives up, at the least predicted damage.

A unit is a pool of tensors (a component of a group, or with `by_third` a component's first, middle
or last third of the layers) with its OBD damage curve along the order pooled magnitude pruning
removes weights in (asrprune.damage.magnitude_order_cumsum). `allocate_counts` solves the
multiple-choice knapsack over units × grid steps exactly, one unit taking the exact remainder so that
exactly the budget is pruned. The `allocate` methods (asrprune.methods) turn the counts into masks.
Tensors in, counts out: no model and no file here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from asrprune.components import GROUPS, classify, layers_in_range
from asrprune.damage import magnitude_order_cumsum

THIRDS = ("first_third", "middle_third", "last_third")


@dataclass
class Unit:
    """One allocation unit: a pool of tensors with its magnitude-ordered OBD damage curve."""

    name: str
    tensors: list[str]
    numel: int
    cum_damage: torch.Tensor  # [numel + 1] float64: damage of pruning the k smallest |w|, k = 0..numel

    def damage(self, k: int) -> float:
        return float(self.cum_damage[k])


def units_of(names: list[str], layers: dict[str, int], by_third: bool = False) -> dict[str, list[str]]:
    """Group tensors into allocation units by component (and, with `by_third`, by layer third).

    `layers` is the model's blocks per side (asrprune.components.n_layers). Tensors outside the blocks
    (convolutions, the token embedding) form one unit per component.
    """
    units: dict[str, list[str]] = {}
    for n in names:
        info = classify(n)
        key = info.component
        if by_third and info.layer >= 0:
            key = next(f"{info.component}.{t}" for t in THIRDS if info.layer in layers_in_range(t, layers[info.side]))
        units.setdefault(key, []).append(n)
    order = {c: i for i, c in enumerate(list(GROUPS["all"]) + ["embeddings", "layernorm", "bias"])}
    return dict(sorted(units.items(), key=lambda kv: (order.get(kv[0].split(".")[0], 99), THIRDS.index(kv[0].split(".")[1]) if "." in kv[0] else 0)))


def damage_unit(name: str, tensors: list[str], params: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor]) -> Unit:
    """Cumulative OBD damage ½ F·w² along the same (|w|, flat index) order the masks prune in.

    `params` are the model's weights by name (asrprune.methods.parameters).
    """
    for t in tensors:
        if t not in fisher:
            raise ValueError(f"the Fisher has no entry for {t!r}; was it computed for this model?")
        if tuple(fisher[t].shape) != tuple(params[t].shape):
            raise ValueError(f"Fisher of {t!r} has shape {tuple(fisher[t].shape)}, the weight {tuple(params[t].shape)}")
    cum = magnitude_order_cumsum(fisher, params, tensors)
    return Unit(name, tensors, cum.numel() - 1, cum)


def grid_counts(numel: int, grid_step: float) -> list[int]:
    """The pruned counts a unit may take on the grid: round(j·step·numel), j = 0..1/step."""
    steps = round(1 / grid_step)
    # round(s·n) at each grid sparsity s: asrprune.methods.n_to_prune
    return sorted({round(j / steps * numel) for j in range(steps + 1)})


def _pareto(counts: np.ndarray, damage: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the states no other state dominates (at least as many weights pruned for no more damage)."""
    order = np.lexsort((damage, -counts))  # most pruned first, then least damage
    counts, damage, origin = counts[order], damage[order], origin[order]
    best = np.minimum.accumulate(damage)
    keep = np.ones(len(damage), dtype=bool)
    keep[1:] = damage[1:] < best[:-1]
    return counts[keep], damage[keep], origin[keep]


def allocate_counts(units: list[Unit], budget: int, grid_step: float = 0.05) -> dict[str, int]:
    """Weights to prune per unit, exactly `budget` in all, at the least predicted damage.

    A multiple-choice knapsack solved exactly: every unit but one takes a count on its grid
    (`grid_counts`), and one unit, the filler, takes the exact remainder (any count) so the total
    is the budget. For each choice of filler, a dynamic programme over the other units keeps the
    Pareto frontier of (weights pruned, damage) states; the best completion over all fillers wins
    (ties: the earlier filler, then the fewer weights on the grid).
    """
    total = sum(u.numel for u in units)
    if not 0 <= budget <= total:
        raise ValueError(f"cannot prune {budget} of {total} weights")
    grids = [np.array(grid_counts(u.numel, grid_step), dtype=np.int64) for u in units]
    curves = [u.cum_damage.double().numpy() for u in units]
    best: tuple[float, list[int]] | None = None
    for j, filler in enumerate(units):
        others = [i for i in range(len(units)) if i != j]
        # state arrays: pruned count, damage, and the choice index per unit (row of `picks`)
        counts = np.zeros(1, dtype=np.int64)
        damage = np.zeros(1)
        picks = np.zeros((1, 0), dtype=np.int64)
        capacity_left = sum(units[i].numel for i in others) + filler.numel
        for i in others:
            capacity_left -= units[i].numel
            g = grids[i]
            c = (counts[:, None] + g[None, :]).reshape(-1)
            d = (damage[:, None] + curves[i][g][None, :]).reshape(-1)
            origin = np.arange(len(c))
            ok = (c <= budget) & (c + capacity_left >= budget)
            c, d, origin = _pareto(c[ok], d[ok], origin[ok])
            picks = np.concatenate([picks[origin // len(g)], g[origin % len(g)][:, None]], axis=1)
            counts, damage = c, d
        rest = budget - counts
        ok = (rest >= 0) & (rest <= filler.numel)
        if not ok.any():
            continue
        cost = damage[ok] + curves[j][rest[ok]]
        k = int(np.argmin(cost))
        if best is None or cost[k] < best[0]:
            chosen = dict(zip(others, picks[ok][k].tolist()))
            chosen[j] = int(rest[ok][k])
            best = (float(cost[k]), [chosen[i] for i in range(len(units))])
    assert best is not None  # the filler alone can always absorb a feasible budget with the rest at 0 or full
    return {u.name: c for u, c in zip(units, best[1])}
