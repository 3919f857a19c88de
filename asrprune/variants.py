"""The variant model: one pruned (or unpruned) model, defined once for planning, rules and scripts.

A variant has a readable, stable id that round-trips through `Variant.parse`:
- `baseline`;
- `METHOD-TARGET-sPERCENT`, e.g. `magnitude-dec_self_attn-s50`, `global-all-s40`;
- `schedule-NAME`, a named schedule (asrprune.schedules), e.g. `schedule-authors40`;
- `METHOD-as-NAME`, a method at exactly schedule NAME's pool and pruned count, e.g. `global-as-authors40`;
- `schedule-NAME-without-COMPONENT` / `schedule-NAME-only-COMPONENT`, an ablation of schedule NAME:
  the full schedule with one of its entries left unpruned, or that entry alone. COMPONENT is the
  schedule's own target name (e.g. `dec_ffn.first_third`, `token_embedding`), so it is readable,
  stable and valid in the rules' variant wildcard `[a-z][a-z0-9_.-]*`. A grid entry
  `{method: schedule, schedules: [NAME], ablate: [without, only]}` plans the full schedule and
  every ablation of every entry with a nonzero sparsity (`schedule_components`).

The method registry (`METHODS`) is here, torch-free, one declaration per method: the inputs its
masks read, the variants it makes, its special cases (the baseline prunes nothing, a schedule names
its own rates and can be ablated) and the name of its mask function in asrprune.methods, which looks
the functions up from these declarations. Planning reads it without importing torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from asrprune.components import parse_target
from asrprune.schedules import resolve_schedule

BASELINE = "baseline"
SCHEDULE = "schedule"


@dataclass(frozen=True)
class Method:
    """One pruning method: the function that computes its masks, what it reads, what variants it makes."""

    masks: str  # its mask function in asrprune.methods
    needs_fisher: bool = False  # reads the sensitivity stage's fisher.safetensors
    needs_activations: bool = False  # reads the calibration audio (input activation norms)
    takes_sparsity: bool = True  # False: no sparsity or target of its own (the baseline, a schedule)
    default_target: str | None = None  # the target when a grid entry names none
    matches_schedule: bool = False  # can run as METHOD-as-NAME
    names_schedule: bool = False  # its variants are schedule-NAME, and take `ablate` (without/only)


METHODS: dict[str, Method] = {
    BASELINE: Method("baseline_masks", takes_sparsity=False),
    "magnitude": Method("magnitude_masks"),
    "global": Method("global_masks", default_target="all", matches_schedule=True),
    "uniform": Method("uniform_masks"),
    SCHEDULE: Method("schedule_masks", takes_sparsity=False, names_schedule=True),
    "allocate": Method("allocate_masks", needs_fisher=True, default_target="all", matches_schedule=True),
    "allocate_thirds": Method("allocate_thirds_masks", needs_fisher=True, default_target="all", matches_schedule=True),
    "wanda": Method("wanda_masks", needs_activations=True),
    "random": Method("random_masks"),
}

_PERCENT_RE = re.compile(r"^(?P<method>[a-z_]+)-(?P<target>.+)-s(?P<pct>\d+)$")
_MATCHED_RE = re.compile(r"^(?P<method>[a-z_]+)-as-(?P<schedule>[A-Za-z0-9_]+)$")
_ABLATION_RE = re.compile(r"^schedule-(?P<schedule>[A-Za-z0-9_]+)-(?P<ablate>[a-z]+)-(?P<component>.+)$")
# How a schedule can be taken apart: `without` leaves one entry's tensors unpruned (every other
# tensor keeps the full schedule's mask), `only` prunes that entry's tensors alone.
ABLATIONS = ("without", "only")


def check_ablation(kind: str) -> str:
    """An ablation kind, or a named error listing the choices."""
    if kind not in ABLATIONS:
        raise ValueError(f"unknown schedule ablation {kind!r}: expected one of {', '.join(ABLATIONS)}")
    return kind


def schedule_components(schedule: dict[str, Any]) -> list[str]:
    """The entries of a schedule an ablation can take out: its targets with a nonzero sparsity, in order."""
    return [t for t, rate in schedule.items() if float(rate.sparsity) > 0]


def check_method(method: str) -> Method:
    """The declaration of a method, or a named error listing the choices."""
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}: expected one of {', '.join(METHODS)}")
    return METHODS[method]


@dataclass(frozen=True)
class Variant:
    """One variant: `sparsity` is a fraction (None when the method takes none or matches a schedule);
    `schedule` names the schedule of `schedule-NAME` or the one `METHOD-as-NAME` matches; `ablate`
    (`without` or `only`) and `component` (one of the schedule's targets) make it an ablation."""

    method: str
    target: str | None = None
    sparsity: float | None = None
    schedule: str | None = None
    ablate: str | None = None
    component: str | None = None

    @property
    def id(self) -> str:
        """The readable, stable id (inverse of `parse`)."""
        if self.method == BASELINE:
            return BASELINE
        if METHODS[self.method].names_schedule:
            if self.ablate is not None:
                return f"schedule-{self.schedule}-{self.ablate}-{self.component}"
            return f"schedule-{self.schedule}"
        if self.schedule is not None:
            return f"{self.method}-as-{self.schedule}"
        return f"{self.method}-{self.target}-s{self.percent}"

    @property
    def percent(self) -> int:
        """The requested sparsity in whole percent (0 when the variant has none of its own)."""
        if self.sparsity is None:
            return 0
        pct = self.sparsity * 100
        if abs(pct - round(pct)) > 1e-9:
            raise ValueError(f"variant ids carry whole percents; sparsity {self.sparsity!r} is not one")
        return round(pct)

    @property
    def needs_fisher(self) -> bool:
        return METHODS[self.method].needs_fisher

    @property
    def needs_activations(self) -> bool:
        return METHODS[self.method].needs_activations

    @property
    def matched(self) -> bool:
        """A method run at a schedule's pool and pruned count (`METHOD-as-NAME`)."""
        return self.schedule is not None and not METHODS[self.method].names_schedule

    @property
    def ablated(self) -> bool:
        """A schedule with one entry left out (`without`) or alone (`only`)."""
        return self.ablate is not None

    @property
    def full_schedule(self) -> "Variant | None":
        """The full schedule an ablation is taken from (None for every other variant)."""
        return Variant(SCHEDULE, "all", None, self.schedule) if self.ablated else None

    @classmethod
    def parse(cls, variant: str) -> "Variant":
        """`baseline`, `schedule-NAME`, `schedule-NAME-{without,only}-COMPONENT`, `METHOD-as-NAME` or
        `METHOD-TARGET-sPCT` -> Variant (a named error otherwise)."""
        if variant == BASELINE:
            return cls(BASELINE)
        m = _ABLATION_RE.match(variant)
        if m:
            try:
                check_ablation(m["ablate"])
                parse_target(m["component"])
            except ValueError as e:
                raise ValueError(f"variant {variant!r}: {e}") from None
            return cls(SCHEDULE, "all", None, m["schedule"], m["ablate"], m["component"])
        if variant.startswith(f"{SCHEDULE}-"):
            name = variant[len(SCHEDULE) + 1 :]
            if not name:
                raise ValueError(f"variant {variant!r} names no schedule: expected schedule-NAME, e.g. schedule-authors40")
            return cls(SCHEDULE, "all", None, name)
        m = _MATCHED_RE.match(variant)
        if m:
            if not check_method(m["method"]).matches_schedule:
                matchable = sorted(k for k, v in METHODS.items() if v.matches_schedule)
                raise ValueError(f"variant {variant!r}: method {m['method']!r} cannot match a schedule; expected one of {matchable}")
            return cls(m["method"], "all", None, m["schedule"])
        m = _PERCENT_RE.match(variant)
        if not m:
            raise ValueError(
                f"cannot parse variant id {variant!r}: expected 'baseline', 'schedule-NAME', 'METHOD-as-NAME' or "
                f"'METHOD-TARGET-sPERCENT' such as 'magnitude-dec_self_attn-s50'"
            )
        check_method(m["method"])
        parse_target(m["target"])
        pct = int(m["pct"])
        if not 0 <= pct <= 100:
            raise ValueError(f"variant {variant!r}: sparsity s{pct} is not a percent in 0..100")
        return cls(m["method"], m["target"], pct / 100, None)


def grid(config: dict[str, Any]) -> list[Variant]:
    """Every variant of the config's grid, the baseline first, without duplicates, in config order.

    Schedules (named in the grid or by `sparsity_of`) are resolved here, so a bad one is a named
    error before any job runs.
    """
    seen: dict[str, Variant] = {}
    for v, _ in grid_entries(config):
        seen.setdefault(v.id, v)
    return list(seen.values())


def grid_entries(config: dict[str, Any]) -> list[tuple[Variant, int | None]]:
    """(variant, index of the grid entry that plans it; None for the baseline) in config order.

    A variant that two entries plan appears twice (each entry may name its own decode sets)."""
    pruning = config["pruning"]
    out: list[tuple[Variant, int | None]] = [(Variant(BASELINE, "none"), None)]
    for i, entry in enumerate(pruning["grid"]):
        method = entry["method"]
        spec = check_method(method)
        kinds = [check_ablation(k) for k in entry.get("ablate") or []]
        if kinds and not spec.names_schedule:
            raise ValueError(f"pruning.grid[{i}]: `ablate` takes a schedule apart; method {method!r} has none")
        if spec.names_schedule:
            for name in entry["schedules"]:
                schedule = resolve_schedule(name, pruning.get("schedules"))
                out.append((Variant(SCHEDULE, "all", None, name), i))
                for kind in kinds:
                    for component in schedule_components(schedule):
                        out.append((Variant(SCHEDULE, "all", None, name, kind, component), i))
            continue
        if entry.get("sparsity_of"):
            name = entry["sparsity_of"]
            resolve_schedule(name, pruning.get("schedules"))
            out.append((Variant(method, "all", None, name), i))
            continue
        for target in entry.get("targets") or [spec.default_target or "all"]:
            parse_target(target)
            for pct in entry["sparsities"]:
                out.append((Variant(method, target, int(pct) / 100), i))
    return out


def by_id(config: dict[str, Any], vid: str) -> Variant:
    """Look a variant id up in the config's grid (a clear error names the unknown id)."""
    for v in grid(config):
        if v.id == vid:
            return v
    raise ValueError(f"variant {vid!r} is not in the config's pruning grid: expected one of {[v.id for v in grid(config)]}")
