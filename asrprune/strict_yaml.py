"""YAML files read strictly (configs and claims files): a duplicate key or an alias is refused with
its line, where PyYAML would keep the last value or expand the alias."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from asrprune.settings import ConfigError


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


class _NoAliasLoader(_UniqueKeyLoader):
    """Refuses YAML aliases (`*name`): nested ones expand exponentially (an "alias bomb" of a few
    hundred bytes is billions of values), and a config has no need of them."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(
                f"{getattr(self, '_asrprune_path', 'config')}: line {event.start_mark.line + 1}: YAML alias "
                f"'*{event.anchor}': aliases are not accepted in a config (nested ones expand exponentially); "
                "expected every value written out"
            )
        return super().compose_node(parent, index)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config, refusing duplicate keys and aliases."""
    with open(path, encoding="utf-8") as f:
        loader = _NoAliasLoader(f)
        loader._asrprune_path = str(path)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data
