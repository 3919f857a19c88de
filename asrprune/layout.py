"""Where an experiment's files live: its folder `results/{name}/`, and the shared store
`results/store/` whose models and data sets are keyed by their definition; the experiment record
that keeps two configs from claiming one name; the layout before experiments, recognised."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asrprune.config import RESERVED_NAMES
from asrprune.settings import schema

# the schema's default `name` (the embedded config's), read from the one place defaults live
DEFAULT_NAME = schema()["properties"]["name"]["default"]
STORE = "store"
# Folders of the layout before experiments (results/tables/wer.parquet, ...): never an experiment's
# name (asrprune.config.RESERVED_NAMES), so an old results/ is recognised and never mistaken for one.
LEGACY_FOLDERS = tuple(n for n in RESERVED_NAMES if n != STORE)


@dataclass(frozen=True)
class Layout:
    """Where an experiment's files live.

    Everything the experiment computes is under `experiment` (results/{name}/); work that depends only
    on its own definition (a converted model, a built data set, encoder states) is under `store`
    (results/store/), at a path keyed by that definition, so experiments that ask for the same thing
    share it and different definitions under one name never share a path.
    """

    root: str = "results"
    name: str = DEFAULT_NAME

    @property
    def experiment(self) -> str:
        return f"{self.root}/{self.name}"

    @property
    def store(self) -> str:
        return f"{self.root}/{STORE}"


def experiment_name(config: dict[str, Any]) -> str:
    """The config's `name` (the embedded default's is `default`)."""
    return str(config.get("name") or DEFAULT_NAME)


def experiment_layout(config: dict[str, Any], root: str = "results") -> Layout:
    """The layout of the config's experiment under `root`."""
    return Layout(root=root.rstrip("/"), name=experiment_name(config))


def definition_key(definition: Any) -> str:
    """12 hex digits of the sha256 of a definition (canonical JSON): the store's key."""
    blob = json.dumps(definition, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def model_key(config: dict[str, Any], model: str) -> str:
    """What defines a prepared model: its config entry (source, packages or path, revision)."""
    return definition_key(config["models"][model])


def dataset_key(config: dict[str, Any], dataset: str) -> str:
    """What defines a built data set: its spec (with `full_data` folded in) and, for a set built
    from another (`of`), that set's key."""
    spec = dataset_spec(config, dataset)
    definition: dict[str, Any] = {"spec": spec}
    if spec.get("of"):
        definition["of"] = dataset_key(config, spec["of"])
    return definition_key(definition)


def model_dir(config: dict[str, Any], model: str, store: str) -> str:
    """The prepared model in the store: `{store}/models/{model}-{key}`."""
    return f"{store}/models/{model}-{model_key(config, model)}"


def dataset_file(config: dict[str, Any], dataset: str, store: str) -> str:
    """The built data set in the store: `{store}/data/{dataset}-{key}.parquet`."""
    return f"{store}/data/{dataset}-{dataset_key(config, dataset)}.parquet"


def store_benchmarks(config: dict[str, Any], store: str) -> list[str]:
    """The benchmark files of the store jobs an experiment uses (its models and data sets), named as
    the store paths are (`model_dir`, `dataset_file`), so the two never drift apart."""
    out = [f"{store}/benchmarks/prepare_model/{Path(model_dir(config, m, store)).name}.tsv" for m in config["models"]]
    out += [f"{store}/benchmarks/prepare_dataset/{Path(dataset_file(config, d, store)).stem}.tsv"
            for d in config["datasets"]]
    return out


def check_store_key(kind: str, name: str, requested: str, expected: str) -> None:
    """A store path asked for under a key that is not this config's definition: a named error.

    The store job builds from the config, so building under another definition's key would file
    one definition under another's name.
    """
    if requested != expected:
        raise ValueError(
            f"{kind} {name!r}: store key {requested} is not this config's definition of it ({expected}); "
            f"ask for the path planned from the config (results/store/{kind}s/{name}-{expected})"
        )


def legacy_outputs(root: str | os.PathLike) -> list[str]:
    """Outputs of the layout before experiments found under `root` (results/tables/wer.parquet, ...)."""
    root = Path(root)
    found = []
    for folder in LEGACY_FOLDERS:
        path = root / folder
        if path.is_dir() and any(path.iterdir()):
            found.append(str(path))
    return found


def legacy_layout_message(root: str, found: list[str], name: str) -> str:
    """What to do with a results/ from before experiments (no silent rerun over it)."""
    return (
        f"{root}/ holds outputs of the layout before experiments ({', '.join(found)}); asrprune now writes "
        f"each experiment under {root}/{{name}}/ and shared work under {root}/{STORE}/. Move the old files "
        f"aside (e.g. `mkdir legacy-results && mv {' '.join(found)} legacy-results/`) or delete them; "
        f"this run's experiment {name!r} would otherwise recompute everything beside them"
    )


EXPERIMENT_RECORD = "experiment.json"


def experiment_record(config: dict[str, Any], sources: list[str], config_id: str, store: str) -> dict[str, Any]:
    """What results/{name}/experiment.json holds: the name, config files and hash, and the store
    paths of the experiment's models and data sets."""
    return {
        "name": experiment_name(config),
        "sources": list(sources),
        "config_hash": config_id,
        "store": store,
        "models": {m: model_dir(config, m, store) for m in config["models"]},
        "datasets": {d: dataset_file(config, d, store) for d in config["datasets"]},
    }


def check_experiment_record(record: dict[str, Any] | None, sources: list[str], config_id: str, name: str,
                            where: str) -> None:
    """Two configs that claim one experiment name with different definitions: a named error.

    `record` is what the experiment's last run wrote (results/{name}/experiment.json): the config
    files it came from and its config hash. The same files edited (a new grid) are the same
    experiment and rerun what changed; other files with another definition are another experiment.
    """
    if not record:
        return
    if record.get("config_hash") == config_id or list(record.get("sources") or []) == list(sources):
        return
    raise ValueError(
        f"experiment {name!r}: {where} was written from {', '.join(record.get('sources') or ['?'])} "
        f"(config hash {record.get('config_hash')}); this run's config ({', '.join(sources) or 'none'}, "
        f"hash {config_id}) defines another experiment under the same name; give it its own `name:` "
        f"(results are kept per name), or remove {where.rsplit('/', 1)[0]}/ to replace that experiment"
    )



def dataset_spec(config: dict[str, Any], name: str) -> dict[str, Any]:
    """A dataset's build spec, with the global `full_data` switch folded in."""
    spec = dict(config["datasets"][name])
    spec.pop("role", None)
    if config.get("full_data", False):
        spec["full"] = True
    return spec
