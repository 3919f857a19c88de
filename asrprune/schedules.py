"""Pruning schedules as data: a named mapping target -> Rate, built in or from the config.

Torch-free, so planning (asrprune.plan) can check schedule names and entries before any job runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asrprune.components import parse_target


@dataclass(frozen=True)
class Rate:
    """One schedule entry: a sparsity (fraction) applied per tensor or pooled over the target's tensors."""

    sparsity: float
    per_tensor: bool = False


Schedule = dict[str, Rate]

# Built-in schedules. Realized sparsity of all parameters (tests/test_methods.py checks the numbers on
# whisper-small's shapes and real tiny.en): see docs/method.md, "Schedules".
SCHEDULES: dict[str, Schedule] = {
    # The schedule the authors released (juligoat/openai-whisper-compression,
    # pruning/final_pruning_script/pruning_and_storing_as_sparse.py, `base_pruning_config`):
    # `prune.l1_unstructured` on each module at its component's rate; the decoder FFN by layer
    # thirds (layers 0-3 / 4-7 / 8-11 of whisper-small, by relative depth elsewhere); the token
    # embedding and the tied output projection once at 25 %; LayerNorm, position embeddings and
    # biases untouched. 39.7 % of whisper-small's parameters.
    "authors40": {
        "enc_ffn": Rate(0.50, per_tensor=True),
        "dec_ffn.first_third": Rate(0.25, per_tensor=True),
        "dec_ffn.middle_third": Rate(0.45, per_tensor=True),
        "dec_ffn.last_third": Rate(0.30, per_tensor=True),
        "enc_self_attn": Rate(0.40, per_tensor=True),
        "dec_self_attn": Rate(0.50, per_tensor=True),
        "dec_cross_attn": Rate(0.45, per_tensor=True),
        "token_embedding": Rate(0.25, per_tensor=True),
        "conv": Rate(0.30, per_tensor=True),
    },
    # What the paper's prose lists (50 % decoder self-attention, 50 % encoder layers 9-12, 40 %
    # encoder FFN, 20 % conv, 10 % LayerNorm), pooled per target: only 18.1 % of whisper-small's
    # parameters, not the 40.8 % the paper states for its schedule.
    "paper_text": {
        "dec_self_attn": Rate(0.5),
        "enc.last_third": Rate(0.5),
        "enc_ffn": Rate(0.4),
        "conv": Rate(0.2),
        "layernorm": Rate(0.1),
    },
}


def _rate(schedule: str, target: str, entry: Any) -> Rate:
    """A config entry (a percent, or {sparsity: percent, per_tensor: bool}) as a Rate."""
    if isinstance(entry, Rate):
        return entry
    if isinstance(entry, dict):
        unknown = set(entry) - {"sparsity", "per_tensor"}
        if unknown or "sparsity" not in entry:
            raise ValueError(
                f"schedule {schedule!r}, target {target!r}: expected a percent or {{sparsity: PERCENT, per_tensor: BOOL}}, got {entry!r}"
            )
        return Rate(entry["sparsity"] / 100, bool(entry.get("per_tensor", False)))
    if isinstance(entry, bool) or not isinstance(entry, (int, float)):
        raise ValueError(f"schedule {schedule!r}, target {target!r}: expected a percent, got {entry!r}")
    return Rate(entry / 100)


def resolve_schedule(name: str, extra_percent: dict[str, dict[str, Any]] | None = None) -> Schedule:
    """A schedule as target -> Rate: built-in SCHEDULES, or the config's (given in percent)."""
    available: dict[str, Schedule] = {k: dict(v) for k, v in SCHEDULES.items()}
    for sched, entries in (extra_percent or {}).items():
        available[sched] = {t: _rate(sched, t, e) for t, e in entries.items()}
    if name not in available:
        raise ValueError(f"unknown schedule {name!r}: expected one of {', '.join(available)}")
    for t, rate in available[name].items():
        parse_target(t)
        if isinstance(rate.sparsity, bool) or not 0.0 <= float(rate.sparsity) <= 1.0:
            raise ValueError(f"schedule {name!r}, target {t!r}: sparsity must be a fraction in [0, 1], got {rate.sparsity!r}")
    return available[name]
