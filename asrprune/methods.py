"""Pruning methods: each one a small function over one interface, like torch.nn.utils.prune's `compute_mask`.

`compute_masks(model, method, target, sparsity, context=...)` returns a keep-mask (True = keep)
for every tensor in the method's scope and nothing for the others; masks are applied once by
`asrprune.masks`, never through a `weight_orig` re-parametrization.

Exact counts and ties. A pooled method prunes exactly `k = round(sparsity * n)` of the `n` weights
of its pool (Python's `round`, as `torch.nn.utils.prune` does for a float amount): the k lowest
scores, ties broken by position in the pool (tensors in model order, each flattened row-major),
i.e. a stable sort by (score, flat index). A per-tensor method (`uniform`) does the same per
tensor, a per-row method (`wanda`) per output row. For weights without ties the pooled L1 masks
equal `torch.nn.utils.prune.global_unstructured(..., L1Unstructured, amount=k)`; with ties torch's
`topk` picks an unspecified subset of the tied weights, ours the first ones.

Methods (declared in `asrprune.variants.METHODS`, their functions here):
- `magnitude`: |w|, one threshold pooled over the target's tensors.
- `global`: the same pooled over a whole group (`all`, `enc` or `dec`): `global-all` ranks every
  prunable matrix (attention, FFN, convolutions; no embeddings, norms or biases).
- `uniform`: the same sparsity in each tensor of the target, one threshold per tensor.
- `schedule`: a named mapping target -> Rate (`SCHEDULES`, plus the config's). Overlapping
  targets: each tensor takes the *largest* sparsity among the targets that select it (a tie goes
  to the target listed first). A rate applies per tensor (`prune.l1_unstructured` on each module,
  as the authors' `authors40` does) or pooled over the tensors the target wins under one
  threshold (as `paper_text` does). No weight is pruned twice. LayerNorm entries are pruned by
  |gamma| and |beta| pooled together (a zero gamma silences that channel).
- `allocate`: per-component sparsities of a group that minimize the OBD predicted damage
  ½ Σ F·w² (diagonal Fisher from the sensitivity stage) of pooled magnitude pruning, with exactly
  `round(sparsity * n)` weights pruned over the group: an exact multiple-choice knapsack over
  units × grid steps (5 %), one unit taking the exact remainder (`asrprune.allocation`).
  `allocate_thirds` does the same with every block component split into layer thirds.
- `schedule-NAME-without-X` / `schedule-NAME-only-X`: schedule NAME's own masks with the tensors
  entry X wins left unpruned, or with only those pruned (`ablated_masks`). Every rate applies per
  tensor or pooled within its own entry, so no tensor's mask depends on another entry: for a
  schedule whose targets do not overlap (authors40) this is exactly the masks of the reduced
  schedule computed directly (tests/test_methods.py proves it). Where targets overlap, a tensor
  keeps its full-schedule owner: `without-X` never hands X's tensors to another entry.
- `METHOD-as-NAME` (`global`, `allocate`, `allocate_thirds`): the method over the tensors schedule
  NAME can prune, pruning exactly as many weights as it does, so a comparison with the schedule
  differs in *where* it prunes, never in *how much*.
- `wanda`: score |W_ij|·‖X_j‖₂ (input activation norms from the calibration split), pruned per
  output row; a conv kernel [out, in, k] per output channel with the input channel's norm.
- `random`: seeded uniform scores pooled within the target (a control).
- `baseline`: prunes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from asrprune.allocation import allocate_counts, damage_unit, units_of
from asrprune.components import GROUPS, classify, n_layers, parse_target, target_tensors
from asrprune.schedules import Schedule
from asrprune.variants import METHODS, Variant, check_ablation, check_method

Masks = dict[str, torch.Tensor]

@dataclass
class PruneContext:
    """What a method may read besides the weights; `notes` collects method facts for the manifest."""

    seed: int = 0
    fisher: dict[str, torch.Tensor] | None = None
    activation_norms: dict[str, torch.Tensor] | None = None
    schedule: Schedule | None = None
    grid_step: float = 0.05
    notes: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Selection helpers


def parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters by name, tied tensors once (proj_out.weight is model.decoder.embed_tokens.weight)."""
    return dict(model.named_parameters())


def n_to_prune(sparsity: float, n: int) -> int:
    """Weights to prune out of n: Python's round(sparsity * n), as torch.nn.utils.prune counts."""
    return round(sparsity * n)


def lowest_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean prune-mask of the k lowest entries of a 1-D score vector, ties by lowest index.

    A kthvalue threshold plus the first tied entries: the same set as a stable sort, without
    sorting (pools reach 10^8 weights).
    """
    n = scores.numel()
    if not 0 <= k <= n:
        raise ValueError(f"cannot prune {k} of {n} weights")
    prune = torch.zeros(n, dtype=torch.bool)
    if k == 0:
        return prune
    if not torch.isfinite(scores).all():
        raise ValueError("pruning scores contain NaN or infinity; the weights or statistics are broken")
    threshold = torch.kthvalue(scores, k).values
    prune = scores < threshold
    missing = k - int(prune.sum())
    tied = torch.nonzero(scores == threshold).flatten()[:missing]
    prune[tied] = True
    return prune


def pooled_masks(scores: dict[str, torch.Tensor], sparsity: float) -> Masks:
    """Keep-masks pruning exactly round(sparsity·n) lowest scores pooled over all given tensors."""
    return pooled_masks_k(scores, n_to_prune(sparsity, sum(s.numel() for s in scores.values())))


def pooled_masks_k(scores: dict[str, torch.Tensor], k: int) -> Masks:
    """Keep-masks pruning exactly the k lowest scores pooled over the tensors (model order)."""
    flat = torch.cat([s.detach().reshape(-1).float() for s in scores.values()])
    keep = ~lowest_k(flat, k)
    out, start = {}, 0
    for name, s in scores.items():
        out[name] = keep[start : start + s.numel()].reshape(s.shape)
        start += s.numel()
    return out


def _magnitudes(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    params = parameters(model)
    return {n: params[n].detach().abs() for n in names}


def _check_sparsity(sparsity: float | None) -> float:
    if sparsity is None or not 0.0 <= float(sparsity) <= 1.0:
        raise ValueError(f"sparsity must be a fraction in [0, 1], got {sparsity!r}")
    return float(sparsity)


def _require_group(method: str, target: str) -> None:
    base, layers = parse_target(target)
    if base not in GROUPS or layers is not None:
        raise ValueError(
            f"method {method!r} ranks over a whole group of matrices: target must be one of "
            f"{', '.join(GROUPS)}, got {target!r}"
        )


# ---------------------------------------------------------------------------------------------
# Methods: fn(model, target, sparsity, context) -> masks


def baseline_masks(model: nn.Module, target: str | None, sparsity: float | None, context: PruneContext) -> Masks:
    """The unpruned model: no masks."""
    return {}


def magnitude_masks(model: nn.Module, target: str, sparsity: float, context: PruneContext) -> Masks:
    """L1 magnitude, one threshold pooled over the target's tensors."""
    return pooled_masks(_magnitudes(model, target_tensors(model, target)), sparsity)


def global_masks(model: nn.Module, target: str, sparsity: float, context: PruneContext) -> Masks:
    """L1 magnitude pooled over every prunable matrix of a group (`all`, `enc`, `dec`)."""
    _require_group("global", target)
    return magnitude_masks(model, target, sparsity, context)


def uniform_masks(model: nn.Module, target: str, sparsity: float, context: PruneContext) -> Masks:
    """L1 magnitude at the same sparsity in each tensor of the target (per-tensor threshold)."""
    out: Masks = {}
    for name, mag in _magnitudes(model, target_tensors(model, target)).items():
        out.update(pooled_masks({name: mag}, sparsity))
    return out


def random_masks(model: nn.Module, target: str, sparsity: float, context: PruneContext) -> Masks:
    """Seeded random scores pooled within the target: the control every method must beat."""
    gen = torch.Generator().manual_seed(int(context.seed))
    params = parameters(model)
    scores = {n: torch.rand(params[n].shape, generator=gen) for n in target_tensors(model, target)}
    return pooled_masks(scores, sparsity)


def schedule_assignment(model: nn.Module, schedule: Schedule) -> dict[str, str]:
    """Tensor -> the schedule target that prunes it: the largest sparsity wins, ties to the first listed."""
    winner: dict[str, str] = {}
    for target, rate in schedule.items():
        _check_sparsity(rate.sparsity)
        # a layer third can be empty in a shallow model (2 decoder layers have no middle third)
        for name in target_tensors(model, target, allow_empty=True):
            if name not in winner or rate.sparsity > schedule[winner[name]].sparsity:
                winner[name] = target
    return winner


def schedule_pruned_count(model: nn.Module, schedule: Schedule) -> tuple[list[str], int]:
    """(tensors the schedule can prune, in model order; how many weights it prunes), from shapes alone."""
    winner = schedule_assignment(model, schedule)
    params = parameters(model)
    total = 0
    for t, rate in schedule.items():
        sizes = [params[n].numel() for n in winner if winner[n] == t]
        if rate.per_tensor:
            total += sum(n_to_prune(rate.sparsity, size) for size in sizes)
        else:
            total += n_to_prune(rate.sparsity, sum(sizes))
    return [n for n in params if n in winner], total


def schedule_masks(model: nn.Module, target: str | None, sparsity: float | None, context: PruneContext) -> Masks:
    """A named schedule: each target's tensors pruned by magnitude at its rate, per tensor or pooled."""
    if not context.schedule:
        raise ValueError("method 'schedule' needs context.schedule (target -> Rate); see schedules.resolve_schedule")
    if target not in (None, "all"):
        raise ValueError(f"method 'schedule' takes its targets from the schedule; target must be 'all', got {target!r}")
    winner = schedule_assignment(model, context.schedule)
    out: Masks = {}
    pools = {}
    for t, rate in context.schedule.items():
        s = rate.sparsity
        names = [n for n in winner if winner[n] == t]
        if not names:
            pools[t] = {"sparsity_requested": s, "per_tensor": rate.per_tensor, "tensors": 0, "numel": 0, "pruned": 0, "sparsity": 0.0}
            continue
        mags = _magnitudes(model, names)
        if rate.per_tensor:
            masks = {}
            for name, mag in mags.items():
                masks.update(pooled_masks({name: mag}, s))
        else:
            masks = pooled_masks(mags, s)
        numel = sum(m.numel() for m in masks.values())
        pruned = numel - sum(int(m.sum()) for m in masks.values())
        pools[t] = {
            "sparsity_requested": s, "per_tensor": rate.per_tensor, "tensors": len(names), "numel": numel,
            "pruned": pruned, "sparsity": pruned / numel,
        }
        out.update(masks)
    context.notes["schedule"] = {t: rate.sparsity for t, rate in context.schedule.items()}
    context.notes["schedule_per_tensor"] = sorted(t for t, rate in context.schedule.items() if rate.per_tensor)
    context.notes["schedule_pools"] = pools
    params = parameters(model)
    return {n: out[n] for n in params if n in out}  # model order


def ablated_masks(model: nn.Module, kind: str, component: str, context: PruneContext) -> Masks:
    """A schedule taken apart: the full schedule's masks without entry `component`'s tensors
    (`without`) or restricted to them (`only`); see the module doc for why this is exact."""
    check_ablation(kind)
    if not context.schedule:
        raise ValueError("a schedule ablation needs context.schedule (target -> Rate); see schedules.resolve_schedule")
    if component not in context.schedule or not context.schedule[component].sparsity > 0:
        raise ValueError(
            f"schedule ablation {kind}-{component}: {component!r} is not an entry of the schedule with a nonzero "
            f"sparsity; expected one of {[t for t, r in context.schedule.items() if r.sparsity > 0]}"
        )
    full = schedule_masks(model, "all", None, context)
    owned = {n for n, t in schedule_assignment(model, context.schedule).items() if t == component}
    keep_owned = kind == "only"
    out = {n: m for n, m in full.items() if (n in owned) == keep_owned}
    left = [t for t in context.schedule if (t == component) != keep_owned]
    for t in left:  # entries this ablation leaves unpruned: nothing requested, nothing pruned
        context.notes["schedule"][t] = 0.0
        context.notes["schedule_pools"][t].update(pruned=0, sparsity=0.0, left_unpruned=True)
    context.notes["ablation"] = {"kind": kind, "component": component, "tensors": sorted(owned)}
    return out


def wanda_masks(model: nn.Module, target: str, sparsity: float, context: PruneContext) -> Masks:
    """|W_ij|·‖X_j‖₂ pruned per output row (conv: per output channel, input channel norms)."""
    norms = context.activation_norms
    if norms is None:
        raise ValueError("method 'wanda' needs context.activation_norms (asrprune.activations.input_activation_norms)")
    params = parameters(model)
    out: Masks = {}
    for name in target_tensors(model, target):
        w = params[name].detach()
        module = model.get_submodule(name.rsplit(".", 1)[0])
        if not name.endswith(".weight") or not isinstance(module, (nn.Linear, nn.Conv1d)):
            raise ValueError(
                f"method 'wanda' prunes Linear and Conv1d weights only; {name!r} ({classify(name).component}) is not one"
            )
        if name not in norms:
            raise ValueError(f"no input activation norms for {name!r}; compute them for every tensor of target {target!r}")
        x = norms[name].detach().float().reshape(-1)
        if x.numel() != w.shape[1]:
            raise ValueError(f"activation norms of {name!r} have {x.numel()} entries, the weight has {w.shape[1]} inputs")
        # Broadcast the input norm over the input axis (and the kernel axis of a convolution).
        scores = w.abs().float() * x.view(1, -1, *([1] * (w.dim() - 2)))
        rows = scores.reshape(w.shape[0], -1)
        k = n_to_prune(sparsity, rows.shape[1])
        order = torch.sort(rows, dim=1, stable=True).indices[:, :k]
        keep = torch.ones_like(rows, dtype=torch.bool)
        keep.scatter_(1, order, False)
        out[name] = keep.reshape(w.shape)
    return out


# ---------------------------------------------------------------------------------------------
# Fisher-guided allocation (the solver and its units: asrprune.allocation)


def _allocate_units(model: nn.Module, names: list[str], budget: int, context: PruneContext, by_third: bool) -> Masks:
    """Fisher-guided counts per unit over `names`, exactly `budget` pruned; the choice goes into notes."""
    if context.fisher is None:
        raise ValueError("method 'allocate' needs context.fisher (results/sensitivity/{model}/fisher.safetensors)")
    params = parameters(model)
    units = [damage_unit(n, ts, params, context.fisher) for n, ts in units_of(names, n_layers(model), by_third).items()]
    total = sum(u.numel for u in units)
    counts = allocate_counts(units, budget, context.grid_step)
    mags = _magnitudes(model, [t for u in units for t in u.tensors])
    out: Masks = {}
    for u in units:
        out.update(pooled_masks_k({t: mags[t] for t in u.tensors}, counts[u.name]))
    uniform = {u.name: n_to_prune(budget / total, u.numel) for u in units}
    context.notes["allocation"] = {
        "units": {
            u.name: {
                "numel": u.numel,
                "pruned": counts[u.name],
                "sparsity": counts[u.name] / u.numel,
                "predicted_damage": u.damage(counts[u.name]),
            }
            for u in units
        },
        "budget": budget,
        "grid_step": context.grid_step,
        "solver": "exact multiple-choice knapsack (grid counts, one exact filler)",
        "predicted_damage": sum(u.damage(counts[u.name]) for u in units),
        "uniform_predicted_damage": sum(u.damage(uniform[u.name]) for u in units),
    }
    return {n: out[n] for n in params if n in out}


def _allocate(model: nn.Module, target: str, sparsity: float, context: PruneContext, by_third: bool) -> Masks:
    _require_group("allocate", target)
    names = target_tensors(model, target)
    budget = n_to_prune(sparsity, sum(parameters(model)[n].numel() for n in names))
    return _allocate_units(model, names, budget, context, by_third)


def allocate_masks(model: nn.Module, target: str, sparsity: float, context: PruneContext) -> Masks:
    """Fisher-guided per-component sparsities at an overall budget (see the module doc)."""
    return _allocate(model, target, sparsity, context, by_third=False)


def allocate_thirds_masks(model: nn.Module, target: str, sparsity: float, context: PruneContext) -> Masks:
    """As `allocate`, with every block component split into first, middle and last layer thirds."""
    return _allocate(model, target, sparsity, context, by_third=True)


# ---------------------------------------------------------------------------------------------
# Equal-sparsity comparisons: a method over a schedule's pool, pruning exactly what it prunes

def matched_masks(model: nn.Module, method: str, context: PruneContext) -> Masks:
    """`METHOD-as-NAME`: prune as many weights as schedule NAME does, over the same tensors.

    `global` ranks the pool by |w| under one threshold; `allocate` (and `allocate_thirds`) choose
    per-component counts by predicted damage. Only *where* the weights go differs from the schedule.
    """
    if not check_method(method).matches_schedule:
        matchable = sorted(k for k, v in METHODS.items() if v.matches_schedule)
        raise ValueError(f"method {method!r} cannot match a schedule's sparsity: expected one of {matchable}")
    if not context.schedule:
        raise ValueError(f"method {method!r} matched to a schedule needs context.schedule")
    pool, budget = schedule_pruned_count(model, context.schedule)
    pool_numel = sum(parameters(model)[n].numel() for n in pool)
    context.notes["matched"] = {"pool_tensors": len(pool), "pool_numel": pool_numel, "pruned": budget}
    context.notes["schedule"] = {t: rate.sparsity for t, rate in context.schedule.items()}
    if method == "global":
        return pooled_masks_k(_magnitudes(model, pool), budget)
    return _allocate_units(model, pool, budget, context, by_third=method == "allocate_thirds")


MethodFn = Callable[[nn.Module, Any, Any, PruneContext], Masks]
# Each declared method's mask function (asrprune.variants.METHODS names it): a declaration whose
# function is missing fails here, at import.
MASK_FUNCTIONS: dict[str, MethodFn] = {name: globals()[method.masks] for name, method in METHODS.items()}


def compute_masks(
    model: nn.Module, method: str, target: str | None, sparsity: float | None, *, context: PruneContext | None = None
) -> Masks:
    """Keep-masks (True = keep) of the tensors `method` prunes at `sparsity` (a fraction) of `target`."""
    check_method(method)
    context = context or PruneContext()
    if METHODS[method].takes_sparsity:
        sparsity = _check_sparsity(sparsity)
        if target is None:
            raise ValueError(f"method {method!r} needs a target")
        parse_target(target)
    with torch.no_grad():
        return MASK_FUNCTIONS[method](model, target, sparsity, context)


def variant_masks(model: nn.Module, variant: Variant, context: PruneContext) -> Masks:
    """The masks of a variant: `METHOD-as-NAME` through `matched_masks`, a schedule ablation through
    `ablated_masks`, the rest through `compute_masks`."""
    if variant.matched:
        with torch.no_grad():
            return matched_masks(model, variant.method, context)
    if variant.ablated:
        with torch.no_grad():
            return ablated_masks(model, variant.ablate, variant.component, context)
    return compute_masks(model, variant.method, variant.target, variant.sparsity, context=context)
