"""What runs a stage: process set-up for a Snakemake job (logging into the rule's log file, torch
threads, errors on the console), the `Job` a stage's `run()` reads, and `run_stage`, the whole of
every scripts/NAME.py."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def setup_script(log_path: str | Path | None, threads: int = 1) -> logging.Logger:
    """Send logging, warnings and tqdm (stderr) to the rule's log file and pin torch's thread count."""
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        sys.stderr = stream
        _report_errors_on_the_console(log_path)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.captureWarnings(True)
    _exit_on_sigterm()
    try:
        import torch

        torch.set_num_threads(max(1, int(threads)))
    except ImportError:
        pass
    return logging.getLogger("asrprune")


def _report_errors_on_the_console(log_path: str | Path) -> None:
    """An uncaught error goes to the log with its traceback and, in one line, to the console.

    The named error (`WHERE: WHAT; expected EXPECTED`) is what the user needs; without this it sits
    only in the rule's log, behind Snakemake's `CalledProcessError ... check log file(s)`.
    """
    console = sys.__stderr__
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        previous(exc_type, exc, tb)  # the traceback, into the log (sys.stderr)
        if console is not None and not issubclass(exc_type, KeyboardInterrupt):
            try:
                console.write(f"asrprune error: {exc_type.__name__}: {exc} (log: {log_path})\n")
                console.flush()
            except (OSError, ValueError):
                pass

    sys.excepthook = hook


def _terminate(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


def _exit_on_sigterm() -> None:
    """Turn SIGTERM (Snakemake or SLURM cancelling a job) into SystemExit, so `finally` blocks run.

    Python's default SIGTERM action ends the process at once; raising instead lets
    `asrprune.io.atomic_path`/`atomic_dir` delete their temporary files on the way out.
    """
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (e.g. imported by a notebook's worker): leave the default
        pass


# --------------------------------------------------------------------------------------------
# What a stage gets: a job (from Snakemake, or built by hand in a notebook)


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


def run_stage(smk: Any, name: str) -> None:
    """What every scripts/NAME.py does: set the process up for the rule's log, then run stage NAME.

    An error is not caught here: it reaches the hook `setup_script` installed, which writes the
    traceback into the log and the one-line `asrprune error: ...` onto the console.
    """
    setup_script(smk.log[0] if len(smk.log) else None, smk.threads)
    from asrprune import stages

    stages.run(name, Job.from_snakemake(smk))
