"""Config validation: the JSON schema first, then the cross-references a schema cannot express.

Every error names the offending key path, its value and what was expected, and is raised before
Snakemake schedules a single job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from asrprune.components import parse_target

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The config is invalid; the message says where and why."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"duplicate key {key!r} at line {key_node.start_mark.line + 1}: every name (model, dataset, "
                "option) must appear once"
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config, refusing duplicate keys."""
    with open(path, encoding="utf-8") as f:
        data = yaml.load(f, Loader=_UniqueKeyLoader)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data


def _path(parts: Iterator[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def _fill_defaults(validator_cls):
    """A validator that also writes schema defaults into the instance (as snakemake's validate does)."""
    validate_properties = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(name, sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})


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


def validate_config(config: dict[str, Any], schema_path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """Validate `config` in place (filling defaults) and return it, or raise ConfigError."""
    schema = yaml.safe_load(schema_path.read_text())
    calibration = config.get("calibration")
    if isinstance(calibration, dict) and calibration.get("fisher_mode") is True:
        calibration["fisher_mode"] = "true"  # YAML reads a bare `true` as a boolean
    validator = _fill_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(f"invalid config: {_describe(best)}")
    _check_references(config)
    return config


def _check_references(config: dict[str, Any]) -> None:
    """Cross-field checks: the calibration set exists, no test set is calibration, targets parse."""
    datasets = config["datasets"]
    calib = config["calibration"]["dataset"]
    if calib not in datasets:
        raise ConfigError(f"calibration.dataset = {calib!r}: expected one of the datasets {sorted(datasets)}")
    if datasets[calib].get("role", "test") != "calibration":
        raise ConfigError(
            f"datasets.{calib}.role must be 'calibration' because calibration.dataset names it: a test set "
            "can never be the calibration set"
        )
    if not any(spec.get("role", "test") == "test" for spec in datasets.values()):
        raise ConfigError("datasets: no dataset has role 'test': expected at least one test set to decode")
    for name, spec in datasets.items():
        of = spec.get("of")
        if of is not None and of not in datasets:
            raise ConfigError(f"datasets.{name}.of = {of!r}: expected one of the datasets {sorted(datasets)}")
    for i, entry in enumerate(config["pruning"]["grid"]):
        for target in entry.get("targets", []):
            try:
                parse_target(target)
            except ValueError as e:
                raise ConfigError(f"pruning.grid[{i}].targets: {e}") from None
