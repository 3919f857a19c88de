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

Methods (`METHODS`):
- `magnitude`: |w|, one threshold pooled over the target's tensors.
- `global`: the same pooled over a whole group (`all`, `enc` or `dec`): `global-all` ranks every
  prunable matrix (attention, FFN, convolutions; no embeddings, norms or biases).
- `uniform`: the same sparsity in each tensor of the target, one threshold per tensor.
- `schedule`: a named mapping target -> sparsity (`SCHEDULES`, plus the config's). Overlapping
  targets: each tensor takes the *largest* sparsity among the targets that select it (a tie goes
  to the target listed first); the tensors a target wins are pooled under one magnitude
  threshold at its sparsity. So in `paper40` the FFN of the last encoder third is pruned at 50 %
  with the rest of that third, and the other encoder FFNs at 40 % among themselves; every pool's
  realized sparsity equals its request and no weight is pruned twice. LayerNorm entries are
  pruned by |gamma| and |beta| pooled together (a zero gamma silences that channel).
- `allocate`: per-component sparsities of a group that minimize the OBD predicted damage
  ½ Σ F·w² (diagonal Fisher from the sensitivity stage) of pooled magnitude pruning, with exactly
  `round(sparsity * n)` weights pruned over the group. A Lagrangian allocation: each component's
  damage curve on a grid (5 % steps) is replaced by its lower convex hull, hull segments are taken
  cheapest damage-per-weight first while they fit the budget, and the remainder (less than one
  step) goes to the component where it costs the least exact damage. `allocate_thirds` does the
  same with every block component split into layer thirds. The choice goes into `context.notes`.
- `wanda`: score |W_ij|·‖X_j‖₂ (input activation norms from the calibration split), pruned per
  output row; a conv kernel [out, in, k] per output channel with the input channel's norm.
- `random`: seeded uniform scores pooled within the target (a control).
- `baseline`: prunes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from asrprune.components import GROUPS, classify, layers_in_range, parse_target, select_tensors
from asrprune.damage import magnitude_order_cumsum

Masks = dict[str, torch.Tensor]

# The paper's sensitivity-aware schedule (40.8 % overall on whisper-small, as the paper counts it).
SCHEDULES: dict[str, dict[str, float]] = {
    "paper40": {
        "dec_self_attn": 0.5,
        "enc.last_third": 0.5,
        "enc_ffn": 0.4,
        "conv": 0.2,
        "layernorm": 0.1,
    },
}
THIRDS = ("first_third", "middle_third", "last_third")


@dataclass
class PruneContext:
    """What a method may read besides the weights; `notes` collects method facts for the manifest."""

    seed: int = 0
    fisher: dict[str, torch.Tensor] | None = None
    activation_norms: dict[str, torch.Tensor] | None = None
    schedule: dict[str, float] | None = None
    grid_step: float = 0.05
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VariantSpec:
    """A variant id, parsed: `sparsity` is a fraction; `schedule` names a schedule for `schedule-*`."""

    method: str
    target: str | None = None
    sparsity: float | None = None
    schedule: str | None = None


# ---------------------------------------------------------------------------------------------
# Selection helpers


def n_layers(model: nn.Module) -> dict[str, int]:
    """Blocks per side, as `components.select_tensors` wants them."""
    cfg = model.config
    return {"encoder": cfg.encoder_layers, "decoder": cfg.decoder_layers}


def parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters by name, tied tensors once (proj_out.weight is model.decoder.embed_tokens.weight)."""
    return dict(model.named_parameters())


def target_tensors(model: nn.Module, target: str) -> list[str]:
    """Names of the tensors a target selects in this model, in model order."""
    return select_tensors(list(parameters(model)), target, n_layers(model))


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


def schedule_assignment(model: nn.Module, schedule: dict[str, float]) -> dict[str, str]:
    """Tensor -> the schedule target that prunes it: the largest sparsity wins, ties to the first listed."""
    winner: dict[str, str] = {}
    for target, s in schedule.items():
        _check_sparsity(s)
        for name in target_tensors(model, target):
            if name not in winner or s > schedule[winner[name]]:
                winner[name] = target
    return winner


def schedule_masks(model: nn.Module, target: str | None, sparsity: float | None, context: PruneContext) -> Masks:
    """A named schedule: per target pooled magnitude over the tensors it wins (see the module doc)."""
    if not context.schedule:
        raise ValueError("method 'schedule' needs context.schedule (target -> sparsity); see methods.resolve_schedule")
    if target not in (None, "all"):
        raise ValueError(f"method 'schedule' takes its targets from the schedule; target must be 'all', got {target!r}")
    winner = schedule_assignment(model, context.schedule)
    out: Masks = {}
    pools = {}
    for t, s in context.schedule.items():
        names = [n for n in winner if winner[n] == t]
        if not names:
            pools[t] = {"sparsity_requested": s, "tensors": 0, "numel": 0, "pruned": 0, "sparsity": 0.0}
            continue
        masks = pooled_masks(_magnitudes(model, names), s)
        numel = sum(m.numel() for m in masks.values())
        pruned = numel - sum(int(m.sum()) for m in masks.values())
        pools[t] = {"sparsity_requested": s, "tensors": len(names), "numel": numel, "pruned": pruned, "sparsity": pruned / numel}
        out.update(masks)
    context.notes["schedule"] = dict(context.schedule)
    context.notes["schedule_pools"] = pools
    params = parameters(model)
    return {n: out[n] for n in params if n in out}  # model order


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
# Fisher-guided allocation


@dataclass
class Unit:
    """One allocation unit: a pool of tensors with its magnitude-ordered OBD damage curve."""

    name: str
    tensors: list[str]
    numel: int
    cum_damage: torch.Tensor  # [numel + 1] float64: damage of pruning the k smallest |w|, k = 0..numel

    def damage(self, k: int) -> float:
        return float(self.cum_damage[k])


def allocation_units(model: nn.Module, target: str, by_third: bool = False) -> dict[str, list[str]]:
    """Unit name -> tensors: the group's matrix components, optionally each split into layer thirds."""
    _require_group("allocate", target)
    base, _ = parse_target(target)
    names = list(parameters(model))
    layers = n_layers(model)
    units: dict[str, list[str]] = {}
    for comp in GROUPS[base]:
        if by_third and comp != "conv":
            for third in THIRDS:
                chosen = [
                    n for n in names
                    if classify(n).component == comp and classify(n).layer in layers_in_range(third, layers[classify(n).side])
                ]
                if chosen:
                    units[f"{comp}.{third}"] = chosen
        else:
            chosen = [n for n in names if classify(n).component == comp]
            if chosen:
                units[comp] = chosen
    return units


def damage_unit(model: nn.Module, name: str, tensors: list[str], fisher: dict[str, torch.Tensor]) -> Unit:
    """Cumulative OBD damage ½ F·w² along the same (|w|, flat index) order the masks prune in."""
    params = parameters(model)
    for t in tensors:
        if t not in fisher:
            raise ValueError(f"the Fisher has no entry for {t!r}; was it computed for this model?")
        if tuple(fisher[t].shape) != tuple(params[t].shape):
            raise ValueError(f"Fisher of {t!r} has shape {tuple(fisher[t].shape)}, the weight {tuple(params[t].shape)}")
    cum = magnitude_order_cumsum(fisher, params, tensors)
    return Unit(name, tensors, cum.numel() - 1, cum)


def _lower_hull(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Lower convex hull of points sorted by x (Andrew's monotone chain), collinear points dropped."""
    hull: list[tuple[int, float]] = []
    for p in points:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) <= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def allocate_counts(units: list[Unit], budget: int, grid_step: float = 0.05) -> dict[str, int]:
    """Weights to prune per unit, summing to `budget`, by Lagrangian allocation over damage curves."""
    total = sum(u.numel for u in units)
    if not 0 <= budget <= total:
        raise ValueError(f"cannot prune {budget} of {total} weights")
    steps = round(1 / grid_step)
    segments = []
    for ui, u in enumerate(units):
        ks = sorted({n_to_prune(j / steps, u.numel) for j in range(steps + 1)})
        hull = _lower_hull([(k, u.damage(k)) for k in ks])
        for si, ((k0, d0), (k1, d1)) in enumerate(zip(hull, hull[1:])):
            segments.append(((d1 - d0) / (k1 - k0), ui, si, k1 - k0))
    segments.sort()
    counts = [0] * len(units)
    used = 0
    for _, ui, _, dk in segments:
        if used + dk > budget:
            break  # Lagrangian stop: later segments cost more per weight
        counts[ui] += dk
        used += dk
    rest = budget - used
    if rest:
        # Less than one hull step remains: put it where its exact damage is smallest.
        best = min(
            (u.damage(counts[i] + rest) - u.damage(counts[i]), i)
            for i, u in enumerate(units)
            if counts[i] + rest <= u.numel
        )
        counts[best[1]] += rest
    return {u.name: c for u, c in zip(units, counts)}


def _allocate(model: nn.Module, target: str, sparsity: float, context: PruneContext, by_third: bool) -> Masks:
    if context.fisher is None:
        raise ValueError("method 'allocate' needs context.fisher (results/sensitivity/{model}/fisher.safetensors)")
    units = [damage_unit(model, n, ts, context.fisher) for n, ts in allocation_units(model, target, by_third).items()]
    total = sum(u.numel for u in units)
    budget = n_to_prune(sparsity, total)
    counts = allocate_counts(units, budget, context.grid_step)
    mags = _magnitudes(model, [t for u in units for t in u.tensors])
    out: Masks = {}
    for u in units:
        out.update(pooled_masks_k({t: mags[t] for t in u.tensors}, counts[u.name]))
    uniform = {u.name: n_to_prune(sparsity, u.numel) for u in units}
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
        "predicted_damage": sum(u.damage(counts[u.name]) for u in units),
        "uniform_predicted_damage": sum(u.damage(uniform[u.name]) for u in units),
    }
    params = parameters(model)
    return {n: out[n] for n in params if n in out}


def allocate_masks(model: nn.Module, target: str, sparsity: float, context: PruneContext) -> Masks:
    """Fisher-guided per-component sparsities at an overall budget (see the module doc)."""
    return _allocate(model, target, sparsity, context, by_third=False)


def allocate_thirds_masks(model: nn.Module, target: str, sparsity: float, context: PruneContext) -> Masks:
    """As `allocate`, with every block component split into first, middle and last layer thirds."""
    return _allocate(model, target, sparsity, context, by_third=True)


MethodFn = Callable[[nn.Module, Any, Any, PruneContext], Masks]
METHODS: dict[str, MethodFn] = {
    "baseline": baseline_masks,
    "magnitude": magnitude_masks,
    "global": global_masks,
    "uniform": uniform_masks,
    "schedule": schedule_masks,
    "allocate": allocate_masks,
    "allocate_thirds": allocate_thirds_masks,
    "wanda": wanda_masks,
    "random": random_masks,
}
NEEDS_FISHER = {"allocate", "allocate_thirds"}
NEEDS_ACTIVATIONS = {"wanda"}
NO_SPARSITY = {"baseline", "schedule"}  # methods whose sparsity comes from elsewhere (none, a schedule)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}: expected one of {', '.join(METHODS)}")


def compute_masks(
    model: nn.Module, method: str, target: str | None, sparsity: float | None, *, context: PruneContext | None = None
) -> Masks:
    """Keep-masks (True = keep) of the tensors `method` prunes at `sparsity` (a fraction) of `target`."""
    _check_method(method)
    context = context or PruneContext()
    if method not in NO_SPARSITY:
        sparsity = _check_sparsity(sparsity)
        if target is None:
            raise ValueError(f"method {method!r} needs a target")
        parse_target(target)
    with torch.no_grad():
        return METHODS[method](model, target, sparsity, context)


# ---------------------------------------------------------------------------------------------
# Variant ids and schedules

_VARIANT_RE = re.compile(r"^(?P<method>[a-z_]+)-(?P<target>.+)-s(?P<pct>\d+)$")


def parse_variant(variant: str) -> VariantSpec:
    """`baseline`, `schedule-NAME` or `METHOD-TARGET-sPCT` -> VariantSpec (sparsity as a fraction)."""
    if variant == "baseline":
        return VariantSpec("baseline")
    if variant.startswith("schedule-"):
        name = variant[len("schedule-") :]
        if not name:
            raise ValueError(f"variant {variant!r} names no schedule: expected schedule-NAME, e.g. schedule-paper40")
        return VariantSpec("schedule", "all", None, name)
    m = _VARIANT_RE.match(variant)
    if not m:
        raise ValueError(
            f"cannot parse variant id {variant!r}: expected 'baseline', 'schedule-NAME' or "
            f"'METHOD-TARGET-sPERCENT' such as 'magnitude-dec_self_attn-s50'"
        )
    _check_method(m["method"])
    parse_target(m["target"])
    pct = int(m["pct"])
    if not 0 <= pct <= 100:
        raise ValueError(f"variant {variant!r}: sparsity s{pct} is not a percent in 0..100")
    return VariantSpec(m["method"], m["target"], pct / 100, None)


def variant_id(spec: VariantSpec) -> str:
    """The readable, stable id of a variant (inverse of parse_variant)."""
    if spec.method == "baseline":
        return "baseline"
    if spec.method == "schedule":
        return f"schedule-{spec.schedule}"
    pct = spec.sparsity * 100
    if abs(pct - round(pct)) > 1e-9:
        raise ValueError(f"variant ids carry whole percents; sparsity {spec.sparsity!r} is not one")
    return f"{spec.method}-{spec.target}-s{round(pct)}"


def resolve_schedule(name: str, extra_percent: dict[str, dict[str, int]] | None = None) -> dict[str, float]:
    """A schedule as target -> fraction: built-in SCHEDULES, or the config's (given in percent)."""
    available = {k: dict(v) for k, v in SCHEDULES.items()}
    for sched, entries in (extra_percent or {}).items():
        available[sched] = {t: p / 100 for t, p in entries.items()}
    if name not in available:
        raise ValueError(f"unknown schedule {name!r}: expected one of {', '.join(available)}")
    for t, s in available[name].items():
        parse_target(t)
        _check_sparsity(s)
    return available[name]
