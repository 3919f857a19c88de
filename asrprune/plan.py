"""Pure-Python planning: which variants, test sets, decodes and files a config asks for, with which
params and resources (the paths themselves: asrprune.layout).

`rules/common.smk` calls this module and asrprune.layout, so the whole target assembly is
unit-testable without Snakemake.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from asrprune.layout import dataset_file, definition_key, model_dir
from asrprune.settings import dataset_option
from asrprune.variants import BASELINE, METHODS, Variant, by_id, grid, grid_entries

# Where the Snakefile lives: a relative claims path is looked up here when the working directory lacks it.
WORKFLOW_DIR = str(Path(__file__).resolve().parents[1])


def variants(config: dict[str, Any]) -> list[Variant]:
    """Every variant of the grid, the baseline first (asrprune.variants.grid)."""
    return grid(config)


def variant_by_id(config: dict[str, Any], vid: str) -> Variant:
    """Look a variant id up in the config's grid (asrprune.variants.by_id)."""
    return by_id(config, vid)


def evaluation_sets(config: dict[str, Any]) -> list[str]:
    """Datasets that are decoded and scored."""
    return [name for name, spec in config["datasets"].items() if dataset_option(spec, "role") == "test"]


def calibration_set(config: dict[str, Any]) -> str:
    """The dataset the sensitivity stage (and activation-aware methods) read."""
    return config["calibration"]["dataset"]


@lru_cache(maxsize=8)
def _read_claims(path: str, mtime_ns: int) -> tuple[list[Any], dict[str, list[str]]]:
    from asrprune.claims_file import load_claims_file

    return load_claims_file(path)


def config_claims(config: dict[str, Any], workflow_dir: str = WORKFLOW_DIR) -> tuple[list[Any], dict[str, list[str]]]:
    """(claims, pools) of the config's claims file; none when the config names no claims file."""
    path = claims_file(config, workflow_dir)
    if not path:
        return [], {}
    if not os.path.isfile(path):
        raise FileNotFoundError(f"claims file {path!r} (config `claims`) does not exist")
    return _read_claims(path, os.stat(path).st_mtime_ns)


def claim_sets(config: dict[str, Any], claims: tuple[list[Any], dict[str, list[str]]] | None = None) -> dict[str, set[str]]:
    """Variant id -> the test sets the claims read it on (its own claims and those it is the reference of).

    A `ranks_damage` claim reads whatever was decoded and asks for nothing; a claim whose variant or
    reference is not in the grid is not judged and asks for nothing either.
    """
    from asrprune.claims import resolve_sets

    found, pools = config_claims(config) if claims is None else claims
    tests = evaluation_sets(config)
    ids = {v.id for v in variants(config)}
    out: dict[str, set[str]] = {}
    for claim in found:
        if claim.outcome == "ranks_damage" or claim.variant not in ids or claim.reference not in ids:
            continue
        needed = {s for _, members in resolve_sets(claim, pools, tests) for s in members}
        for vid in (claim.variant, claim.reference):
            out.setdefault(vid, set()).update(needed)
    return out


def _decode_runs(config: dict[str, Any], claims: tuple[list[Any], dict[str, list[str]]] | None = None) -> list[tuple[str, Variant, str]]:
    """(model, variant, test set) of every decode the table, a claim or a plot reads, in grid order.

    A grid entry's variants are decoded on its `sets` (every test set when it names none); a claim
    adds the sets it reads its variant and reference on (`claim_sets`); the baseline is decoded on
    every set any variant is, since every delta is taken against it. The plots draw what the table has.
    """
    tests = evaluation_sets(config)
    entries = config["pruning"]["grid"]
    wanted: dict[str, set[str]] = {}
    for v, i in grid_entries(config):
        if i is not None:
            wanted.setdefault(v.id, set()).update(entries[i].get("sets") or tests)
    for vid, sets in claim_sets(config, claims).items():
        wanted.setdefault(vid, set()).update(sets)
    wanted[BASELINE] = set().union(*wanted.values())
    return [(m, v, d) for m in config["models"] for v in variants(config) for d in tests if d in wanted.get(v.id, ())]


def decode_pairs(config: dict[str, Any], claims: tuple[list[Any], dict[str, list[str]]] | None = None) -> list[tuple[str, str, str]]:
    """(model, variant id, test set) of every decode the plan runs (`_decode_runs`); `claims` as
    `config_claims` returns them (default: the config's claims file)."""
    return [(m, v.id, d) for m, v, d in _decode_runs(config, claims)]


Claims = tuple[list[Any], dict[str, list[str]]]


def _per_run(config: dict[str, Any], results: str, stage: str, claims: Claims | None = None) -> list[str]:
    """One file of `stage` per decoded model × variant × test set (`decode_pairs`)."""
    return [
        f"{results}/{stage}/{m}/{v.id}/{d}.parquet"
        for m, v, d in _decode_runs(config, claims)
    ]


def decode_targets(config: dict[str, Any], results: str = "results/default", claims: Claims | None = None) -> list[str]:
    """One decode per model × variant × test set."""
    return _per_run(config, results, "decode", claims)


def score_targets(config: dict[str, Any], results: str = "results/default", claims: Claims | None = None) -> list[str]:
    """One score file per decode."""
    return _per_run(config, results, "scores", claims)


def final_targets(config: dict[str, Any], results: str = "results/default") -> list[str]:
    """Everything `snakemake` with no target builds."""
    out = [f"{results}/tables/wer.parquet", f"{results}/tables/wer.csv"]
    out += [f"{results}/plots/{name}.png" for name in ("wer_vs_sparsity", "delta_wer", "predicted_vs_measured")]
    for m in config["models"]:
        out.append(f"{results}/sensitivity/{m}/tensors.parquet")
        out.append(f"{results}/sensitivity/{m}/predicted.parquet")
    if config.get("claims"):
        out += [f"{results}/tables/claims.parquet", f"{results}/tables/claims.csv", f"{results}/plots/claims_forest.png"]
    if config.get("findings"):
        d = findings_dir(config, results)
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


def findings_dir(config: dict[str, Any], results: str = "results/default") -> str:
    """Where the `findings` rule writes: config `findings.dir` (the study publishes into docs/), else
    the experiment's findings/ folder."""
    return str((config.get("findings") or {}).get("dir", f"{results}/findings")).rstrip("/")


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
    return sorted({v.target for v in variants(config) if METHODS[v.method].takes_sparsity and not v.matched})


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
    return definition_key({k: v for k, v in config.items() if k not in EXECUTION_SECTIONS})


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


# Where the check_calibration rule writes its verdict (asrprune.datasets.overlap), in the experiment's folder.
CALIBRATION_CHECK = "checks/calibration_overlap.json"


def intermediate_targets(config: dict[str, Any], results: str = "results/default", store: str = "results/store",
                         claims: Claims | None = None) -> list[str]:
    """Every file between the sources and the final targets, for the `all` rule to list.

    Snakemake rebuilds a missing file only when a job that must run asks for it: a deleted
    data set, model, mask set, decode or score would stay missing while what depends on it
    exists. Listed under `all`, a deleted one is rebuilt, and everything downstream with it.
    """
    # the experiment's data sets: links into the store (the store files come with them)
    out = [f"{results}/data/{d}.parquet" for d in config["datasets"]]
    out += [dataset_file(config, d, store) for d in config["datasets"]]
    out += [model_dir(config, m, store) for m in config["models"]]
    out += [f"{results}/masks/{m}/{v.id}" for m in config["models"] for v in variants(config)]
    out += decode_targets(config, results, claims) + score_targets(config, results, claims)
    for m in config["models"]:
        out += [f"{results}/sensitivity/{m}/{name}"
                for name in ("components.parquet", "fisher.safetensors", "heatmap.png", "calibration.json")]
    out += [f"{results}/tables/damage_correlation.parquet", f"{results}/{CALIBRATION_CHECK}"]
    return out
