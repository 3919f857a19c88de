"""What runs a stage: process set-up for a Snakemake job (logging into the rule's log file, torch
threads, errors on the console) and `run_stage`, the whole of every scripts/NAME.py."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any

from asrprune import stages
from asrprune.job import Job


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


def run_stage(smk: Any, name: str) -> None:
    """What every scripts/NAME.py does: set the process up for the rule's log, then run stage NAME.

    An error is not caught here: it reaches the hook `setup_script` installed, which writes the
    traceback into the log and the one-line `asrprune error: ...` onto the console.
    """
    setup_script(smk.log[0] if len(smk.log) else None, smk.threads)
    stages.run(name, Job.from_snakemake(smk))
