"""Process set-up shared by the Snakemake scripts: logging into the rule's log file, torch threads."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def setup_script(log_path: str | Path | None, threads: int = 1) -> logging.Logger:
    """Send logging, warnings and tqdm (stderr) to the rule's log file and pin torch's thread count."""
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        sys.stderr = stream
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.captureWarnings(True)
    try:
        import torch

        torch.set_num_threads(max(1, int(threads)))
    except ImportError:
        pass
    return logging.getLogger("asrprune")
