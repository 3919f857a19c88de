"""What a stage gets: a `Job` (input and output `Files`, params, wildcards, threads, log, config), built
from Snakemake's `snakemake` object or by hand in a notebook."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

class Files(Sequence[str]):
    """A job's input or output paths: every path by position, the named ones by name too.

    `Files("a.parquet")` or `Files(model="results/store/models/tiny.en-ccf1a69312db", masks=[...])`; `files[0]`,
    `files.model`, `files.get("fisher")`, `files.as_list("masks")` (a name that holds one path or many,
    always as a list: Snakemake gives a one-element list function's result as a plain path).
    """

    def __init__(self, /, *paths: str | os.PathLike, **named: str | os.PathLike | Iterable[str | os.PathLike]) -> None:
        flat = [str(p) for p in paths]
        self._named: dict[str, str | list[str]] = {}
        for name, value in named.items():
            if isinstance(value, (str, os.PathLike)):
                self._named[name] = str(value)
                flat.append(str(value))
            else:
                self._named[name] = [str(v) for v in value]
                flat.extend(self._named[name])
        self._paths = flat

    @classmethod
    def from_snakemake(cls, namedlist: Any) -> Files:
        """From a Snakemake Namedlist (`snakemake.input`, `snakemake.output`): positions and names kept."""
        files = cls(**dict(namedlist.items()))
        files._paths = [str(p) for p in namedlist]
        return files

    def __getitem__(self, key: int | str) -> Any:  # type: ignore[override]
        return self._named[key] if isinstance(key, str) else self._paths[key]

    def __getattr__(self, name: str) -> str | list[str]:
        try:
            return self.__dict__["_named"][name]
        except KeyError:
            raise AttributeError(f"no file named {name!r} (names: {sorted(self.__dict__.get('_named', {}))})") from None

    def __len__(self) -> int:
        return len(self._paths)

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __repr__(self) -> str:
        return f"Files({self._paths!r}, named={self._named!r})"

    def get(self, name: str, default: Any = None) -> Any:
        return self._named.get(name, default)

    def items(self) -> Iterable[tuple[str, str | list[str]]]:
        return self._named.items()

    def as_list(self, name: str) -> list[str]:
        value = self._named[name]
        return [value] if isinstance(value, str) else list(value)


@dataclass(frozen=True)
class Job:
    """What one stage run gets: the typed view of a Snakemake job, or one built by hand.

    `params`, `wildcards` and `config` are plain mappings; `log` is the rule's log file (None in a
    notebook: logging stays where it is).
    """

    input: Files = field(default_factory=Files)
    output: Files = field(default_factory=Files)
    params: Mapping[str, Any] = field(default_factory=dict)
    wildcards: Mapping[str, str] = field(default_factory=dict)
    threads: int = 1
    log: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_snakemake(cls, smk: Any) -> Job:
        """The one place that reads Snakemake's `snakemake` object (a `script:` directive's global)."""
        return cls(
            input=Files.from_snakemake(smk.input),
            output=Files.from_snakemake(smk.output),
            params=dict(smk.params.items()),
            wildcards=dict(smk.wildcards.items()),
            threads=int(smk.threads),
            log=str(smk.log[0]) if len(smk.log) else None,
            config=smk.config,
        )
