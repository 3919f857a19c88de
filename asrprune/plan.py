"""Pure-Python planning: which variants, test sets and files a config asks for.

`rules/common.smk` calls only this module, so the whole target assembly is unit-testable
without Snakemake.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

# BASELINE and Variant are re-exported: tables and rules name them through plan
from asrprune.variants import BASELINE, Variant, by_id, grid  # noqa: F401


def variants(config: dict[str, Any]) -> list[Variant]:
    """Every variant of the grid, the baseline first (asrprune.variants.grid)."""
    return grid(config)


def variant_by_id(config: dict[str, Any], vid: str) -> Variant:
    """Look a variant id up in the config's grid (asrprune.variants.by_id)."""
    return by_id(config, vid)


def evaluation_sets(config: dict[str, Any]) -> list[str]:
    """Datasets that are decoded and scored."""
    return [name for name, spec in config["datasets"].items() if spec.get("role", "test") == "test"]


def calibration_set(config: dict[str, Any]) -> str:
    """The dataset the sensitivity stage (and activation-aware methods) read."""
    return config["calibration"]["dataset"]


def dataset_spec(config: dict[str, Any], name: str) -> dict[str, Any]:
    """A dataset's build spec, with the global `full_data` switch folded in."""
    spec = dict(config["datasets"][name])
    spec.pop("role", None)
    if config.get("full_data", False):
        spec["full"] = True
    return spec


def _per_run(config: dict[str, Any], results: str, stage: str) -> list[str]:
    """One file of `stage` per model × variant × test set."""
    return [
        f"{results}/{stage}/{m}/{v.id}/{d}.parquet"
        for m in config["models"]
        for v in variants(config)
        for d in evaluation_sets(config)
    ]


def decode_targets(config: dict[str, Any], results: str = "results") -> list[str]:
    """One decode per model × variant × test set."""
    return _per_run(config, results, "decode")


def score_targets(config: dict[str, Any], results: str = "results") -> list[str]:
    """One score file per decode."""
    return _per_run(config, results, "scores")


def final_targets(config: dict[str, Any], results: str = "results") -> list[str]:
    """Everything `snakemake` with no target builds."""
    out = [f"{results}/tables/wer.parquet", f"{results}/tables/wer.csv"]
    out += [f"{results}/plots/{name}.png" for name in ("wer_vs_sparsity", "delta_wer", "predicted_vs_measured")]
    for m in config["models"]:
        out.append(f"{results}/sensitivity/{m}/tensors.parquet")
        out.append(f"{results}/sensitivity/{m}/predicted.parquet")
    if config.get("claims"):
        out += [f"{results}/tables/claims.parquet", f"{results}/tables/claims.csv", f"{results}/plots/claims_forest.png"]
    if config.get("findings"):
        d = findings_dir(config)
        out += [f"{d}/findings.md", f"{d}/findings_claims.csv", f"{d}/findings_effects.png"]
    return out


def claims_file(config: dict[str, Any], workflow_dir: str) -> str:
    """The claims file: as given when it exists from the working directory, else inside the workflow.

    The default `config/claims.yaml` ships with the workflow, so a run with `--directory` elsewhere
    (or a user's own config) still finds it.
    """
    path = str(config.get("claims") or "")
    if not path or os.path.isabs(path) or os.path.exists(path):
        return path
    return os.path.join(workflow_dir, path)


def findings_dir(config: dict[str, Any]) -> str:
    """Where the `findings` rule writes (config `findings.dir`; the study publishes into docs/)."""
    return str((config.get("findings") or {}).get("dir", "results/findings")).rstrip("/")


def previous_claims(config: dict[str, Any]) -> list[str]:
    """The earlier claims CSV the findings compare verdicts with (config `findings.previous`), or none."""
    path = str((config.get("findings") or {}).get("previous") or "")
    return [path] if path else []


def transcript_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The decoding settings: every one of them can change a hypothesis, so they are the decode rule's params."""
    return dict(config["decoding"])


def execution_settings(config: dict[str, Any]) -> dict[str, Any]:
    """How the run executes (encoder cache on or off, its size): read by the decode script at run
    time, never a rule parameter, so changing them reruns nothing."""
    return dict(config.get("execution") or {})


def grid_targets(config: dict[str, Any]) -> list[str]:
    """The targets of the grid's variants that prune within a target (schedules name their own ranges).

    A decode job turns them into the encoder boundaries worth storing in the encoder cache: each
    variant changes only tensors inside its target, so it resumes at or after the target's boundary.
    """
    return sorted({v.target for v in variants(config) if v.method not in (BASELINE, "schedule") and not v.matched})


def sort_keys(value: Any) -> Any:
    """The same structure with every mapping's keys in sorted order (lists keep their order)."""
    if isinstance(value, dict):
        return {k: sort_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sort_keys(v) for v in value]
    return value


# Sections that say how a run executes, never what it computes: left out of the config hash, so
# changing them reruns no job (the hash is a param of aggregate and findings).
EXECUTION_SECTIONS = ("execution", "resources")


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of the experiment (the config without its execution sections), recorded with every table row."""
    experiment = {k: v for k, v in config.items() if k not in EXECUTION_SECTIONS}
    blob = json.dumps(experiment, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


RULES_WITH_RESOURCES = (
    "prepare_model",
    "prepare_dataset",
    "sensitivity",
    "prune",
    "decode",
    "score",
    "aggregate",
)
# Rules that may ask for a GPU; pruning and aggregation never do, whatever the config says.
GPU_RULES = {"sensitivity", "decode"}


def rule_resources(config: dict[str, Any], rule: str) -> dict[str, Any]:
    """SLURM/local resources of one rule: the config's `resources.default` overlaid by its own entry.

    Keys left unset are omitted (Snakemake resources cannot be None); `threads` is returned
    separately by `rule_threads`.
    """
    res = config.get("resources", {})
    merged = {**res.get("default", {}), **res.get(rule, {})}
    # SLURM's --cpus-per-task follows the rule's threads unless the config sets it
    merged.setdefault("cpus_per_task", merged.get("threads", 1))
    merged.pop("threads", None)
    if rule not in GPU_RULES:
        merged.pop("gpu", None)
        merged.pop("gpu_model", None)
        merged.pop("gres", None)  # a GPU asked as a generic resource (--gres gpu:1) is a GPU too
    elif not merged.get("gpu"):
        merged.pop("gpu_model", None)
    return {k: v for k, v in merged.items() if v is not None}


def rule_threads(config: dict[str, Any], rule: str) -> int:
    """Threads (torch intra-op threads) of one rule."""
    res = config.get("resources", {})
    return int({**res.get("default", {}), **res.get(rule, {})}.get("threads", 1))


# Where the check_calibration rule writes its verdict (asrprune.datasets.overlap), under results/.
CALIBRATION_CHECK = "checks/calibration_overlap.json"


def intermediate_targets(config: dict[str, Any], results: str = "results") -> list[str]:
    """Every file between the sources and the final targets, for the `all` rule to list.

    Snakemake rebuilds a missing file only when a job that must run asks for it: a deleted
    data set, model, mask set, decode or score would stay missing while what depends on it
    exists. Listed under `all`, a deleted one is rebuilt, and everything downstream with it.
    """
    out = [f"{results}/data/{d}.parquet" for d in config["datasets"]]
    out += [f"{results}/models/{m}" for m in config["models"]]
    out += [f"{results}/masks/{m}/{v.id}" for m in config["models"] for v in variants(config)]
    out += decode_targets(config, results) + score_targets(config, results)
    for m in config["models"]:
        out += [f"{results}/sensitivity/{m}/{name}"
                for name in ("components.parquet", "fisher.safetensors", "heatmap.png", "calibration.json")]
    out += [f"{results}/tables/damage_correlation.parquet", f"{results}/{CALIBRATION_CHECK}"]
    return out
