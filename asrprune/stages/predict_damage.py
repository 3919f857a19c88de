"""predict_damage: OBD predicted damage ½ Σ F·w² of every mask set of one model -> predicted.parquet (asrprune.damage)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from asrprune.job import Job

log = logging.getLogger(__name__)


def run(job: Job) -> None:
    run_predict(job.input.model, job.input.fisher, job.input.as_list("masks"), job.output[0])


def _model_name(model_dir: Path) -> str:
    from asrprune.io import MANIFEST_FILE
    from asrprune.models.load import read_model_manifest

    if (model_dir / MANIFEST_FILE).is_file():
        return str(read_model_manifest(model_dir).get("name") or model_dir.name)
    return model_dir.name


def _weights_by_name(model_dir: Path) -> dict[str, torch.Tensor]:
    """The float32 weights of a prepared model directory, tied aliases included (no model built)."""
    from safetensors.torch import load_file

    from asrprune.damage import with_tied_aliases
    from asrprune.models.checkpoint import WEIGHTS_FILE

    return with_tied_aliases(load_file(str(model_dir / WEIGHTS_FILE)))


def run_predict(model_dir: str | Path, fisher_path: str | Path, mask_dirs: Sequence[str | Path], out_path: str | Path) -> pd.DataFrame:
    """Predicted damage of every mask set → predicted.parquet (columns PREDICTED_COLUMNS); returns the table."""
    from safetensors.torch import load_file

    from asrprune.damage import PREDICTED_COLUMNS, merge_aliases, predicted_damage
    from asrprune.io import write_parquet
    from asrprune.masks import load_mask_set

    model_dir = Path(model_dir)
    weights = _weights_by_name(model_dir)
    fisher = load_file(str(fisher_path))
    name = _model_name(model_dir)
    rows = []
    for d in mask_dirs:
        keep, manifest = load_mask_set(d)
        removed = merge_aliases({n: ~m for n, m in keep.items()})
        rows.append(
            {
                "model": name,
                "variant": manifest.get("variant") or Path(d).name,
                "method": manifest.get("method"),
                "target": manifest.get("target"),
                "sparsity": manifest.get("sparsity_requested"),
                "predicted_damage": predicted_damage(fisher, weights, removed),
                "n_pruned": int(sum(int(r.sum()) for r in removed.values())),
            }
        )
        log.info("%s: predicted damage %.6g over %d pruned weights", rows[-1]["variant"], rows[-1]["predicted_damage"], rows[-1]["n_pruned"])
    table = pd.DataFrame(rows, columns=PREDICTED_COLUMNS)
    table["sparsity"] = pd.to_numeric(table["sparsity"], errors="coerce").astype("float64")
    table = table.sort_values(["variant"], kind="stable").reset_index(drop=True)
    write_parquet(table, out_path, metadata={"damage": {"formula": "0.5 * sum(F * w^2) over pruned weights", "fisher": str(fisher_path)}})
    return table
