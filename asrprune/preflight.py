"""Checks before any job runs (rules/common.smk calls them after the config validates): the pinned
model packages are installed, and the grid's targets and schedules fit each model's depth where it
is known (rules/common.smk reads it with asrprune.models.load.known_depth; nothing here reads a file)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asrprune.components import layers_in_range, parse_target, select_tensors, whisper_parameter_names
from asrprune.settings import ConfigError
from asrprune.schedules import resolve_schedule


def check_installed_packages(config: dict[str, Any]) -> None:
    """Every `ct2-pypi` model's `packages` pins are installed at exactly those versions.

    Run before any job (rules/common.smk): otherwise a pin typo reruns prepare_model, Snakemake
    deletes the prepared model before the job fails, and fixing the typo rebuilds every job after it.
    """
    from importlib import metadata

    for name, spec in (config.get("models") or {}).items():
        if spec.get("source") != "ct2-pypi":
            continue
        for i, requirement in enumerate(spec.get("packages") or []):
            dist, _, pinned = requirement.partition("==")
            try:
                installed = metadata.version(dist.strip())
            except metadata.PackageNotFoundError:
                raise ConfigError(
                    f"models.{name}.packages[{i}] = {requirement!r}: {dist.strip()} is not installed; expected "
                    f"the pinned package installed (pip install {requirement}) or the pin corrected"
                ) from None
            if installed != pinned.strip():
                raise ConfigError(
                    f"models.{name}.packages[{i}] = {requirement!r}: {dist.strip()} {installed} is installed, not "
                    f"{pinned.strip()}; expected the pin to name the installed version (a typo?) or "
                    f"pip install {requirement}"
                )


def _check_range(target: str, depth: dict[str, int]) -> None:
    """An explicit layer range must fit every side the target covers (schedules may select nothing)."""
    base, layers = parse_target(target)
    if layers is None:
        return
    sides = {"enc": ["encoder"], "dec": ["decoder"], "all": ["encoder", "decoder"]}.get(
        base, ["encoder"] if base.startswith("enc") else ["decoder"] if base.startswith("dec") else ["encoder", "decoder"])
    for side in sides:
        layers_in_range(layers, depth[side])


def check_model_depths(config: dict[str, Any], depths: Mapping[str, tuple[int, int] | None]) -> None:
    """Layer ranges of the grid's targets and of the schedules it uses, against each model's depth.

    Runs before any job (rules/common.smk) for every model whose (encoder, decoder) depth `depths`
    knows (None or absent: unknown yet); a grid target must select at least one tensor, a
    schedule's explicit range must exist.
    """
    pruning = config["pruning"]
    defined = pruning.get("schedules") or {}
    schedules = {name: f"pruning.schedules.{name}" for name in defined}
    for i, entry in enumerate(pruning["grid"]):
        for name in entry.get("schedules") or []:
            schedules.setdefault(name, f"pruning.grid[{i}].schedules")
        if entry.get("sparsity_of"):
            schedules.setdefault(entry["sparsity_of"], f"pruning.grid[{i}].sparsity_of")
    for model in config["models"]:
        found = depths.get(model)
        if found is None:
            continue
        depth = {"encoder": found[0], "decoder": found[1]}
        names = whisper_parameter_names(*found)
        about = f"on model {model!r} ({found[0]} encoder, {found[1]} decoder layers)"
        for i, entry in enumerate(pruning["grid"]):
            for target in entry.get("targets") or []:
                try:
                    select_tensors(names, target, depth)
                except ValueError as e:
                    raise ConfigError(f"pruning.grid[{i}].targets: target {target!r} {about}: {e}") from None
        for name, key in schedules.items():
            for target in resolve_schedule(name, defined):
                try:
                    _check_range(target, depth)
                except ValueError as e:
                    raise ConfigError(f"{key}: target {target!r} {about}: {e}") from None
