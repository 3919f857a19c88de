"""The variant model: one pruned (or unpruned) model, defined once for planning, rules and scripts.

A variant has a readable, stable id that round-trips through `Variant.parse`:
- `baseline`;
- `METHOD-TARGET-sPERCENT`, e.g. `magnitude-dec_self_attn-s50`, `global-all-s40`;
- `schedule-NAME`, a named schedule (asrprune.schedules), e.g. `schedule-authors40`;
- `METHOD-as-NAME`, a method at exactly schedule NAME's pool and pruned count, e.g. `global-as-authors40`.

Each method declares here, torch-free, which inputs its masks read (`Method`), so planning knows
which prune jobs depend on the Fisher or the calibration audio without importing the methods; the
functions themselves are registered against these names in asrprune.methods.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from asrprune.components import parse_target
from asrprune.schedules import resolve_schedule

BASELINE = "baseline"


@dataclass(frozen=True)
class Method:
    """What a pruning method needs and takes."""

    needs_fisher: bool = False  # reads results/sensitivity/{model}/fisher.safetensors
    needs_activations: bool = False  # reads the calibration audio (input activation norms)
    takes_sparsity: bool = True  # False: no sparsity of its own (the baseline, a schedule)
    default_target: str | None = None  # the target when a grid entry names none
    matches_schedule: bool = False  # can run as METHOD-as-NAME


METHODS: dict[str, Method] = {
    "baseline": Method(takes_sparsity=False),
    "magnitude": Method(),
    "global": Method(default_target="all", matches_schedule=True),
    "uniform": Method(),
    "schedule": Method(takes_sparsity=False),
    "allocate": Method(needs_fisher=True, default_target="all", matches_schedule=True),
    "allocate_thirds": Method(needs_fisher=True, default_target="all", matches_schedule=True),
    "wanda": Method(needs_activations=True),
    "random": Method(),
}

_PERCENT_RE = re.compile(r"^(?P<method>[a-z_]+)-(?P<target>.+)-s(?P<pct>\d+)$")
_MATCHED_RE = re.compile(r"^(?P<method>[a-z_]+)-as-(?P<schedule>[A-Za-z0-9_]+)$")


def check_method(method: str) -> Method:
    """The declaration of a method, or a named error listing the choices."""
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}: expected one of {', '.join(METHODS)}")
    return METHODS[method]


@dataclass(frozen=True)
class Variant:
    """One variant: `sparsity` is a fraction (None when the method takes none or matches a schedule);
    `schedule` names the schedule of `schedule-NAME` or the one `METHOD-as-NAME` matches."""

    method: str
    target: str | None = None
    sparsity: float | None = None
    schedule: str | None = None

    @property
    def id(self) -> str:
        """The readable, stable id (inverse of `parse`)."""
        if self.method == BASELINE:
            return BASELINE
        if self.method == "schedule":
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
        return self.schedule is not None and self.method != "schedule"

    @classmethod
    def parse(cls, variant: str) -> "Variant":
        """`baseline`, `schedule-NAME`, `METHOD-as-NAME` or `METHOD-TARGET-sPCT` -> Variant (a named error otherwise)."""
        if variant == BASELINE:
            return cls(BASELINE)
        if variant.startswith("schedule-"):
            name = variant[len("schedule-") :]
            if not name:
                raise ValueError(f"variant {variant!r} names no schedule: expected schedule-NAME, e.g. schedule-authors40")
            return cls("schedule", "all", None, name)
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
    pruning = config["pruning"]
    out = [Variant(BASELINE, "none")]
    for entry in pruning["grid"]:
        method = entry["method"]
        spec = check_method(method)
        if method == "schedule":
            for name in entry["schedules"]:
                resolve_schedule(name, pruning.get("schedules"))
                out.append(Variant("schedule", "all", None, name))
            continue
        if entry.get("sparsity_of"):
            name = entry["sparsity_of"]
            resolve_schedule(name, pruning.get("schedules"))
            out.append(Variant(method, "all", None, name))
            continue
        for target in entry.get("targets") or [spec.default_target or "all"]:
            parse_target(target)
            for pct in entry["sparsities"]:
                out.append(Variant(method, target, int(pct) / 100))
    seen: dict[str, Variant] = {}
    for v in out:
        seen.setdefault(v.id, v)
    return list(seen.values())


def by_id(config: dict[str, Any], vid: str) -> Variant:
    """Look a variant id up in the config's grid (a clear error names the unknown id)."""
    for v in grid(config):
        if v.id == vid:
            return v
    raise ValueError(f"variant {vid!r} is not in the config's pruning grid: expected one of {[v.id for v in grid(config)]}")
