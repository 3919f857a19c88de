"""sensitivity: per-tensor Taylor score and per-utterance Fisher of one model on the calibration split
(asrprune.sensitivity) -> tensors.parquet, components.parquet, fisher.safetensors, heatmap.png, calibration.json."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from asrprune.job import Job

log = logging.getLogger(__name__)

OUTPUTS = ("tensors", "components", "fisher", "heatmap", "calibration")


def run(job: Job) -> None:
    out = job.output
    run_sensitivity(
        job.input.model,
        job.input.calib,
        out_dir=Path(out.tensors).parent,
        n_utts=int(job.params["n_utts"]),
        batch_size=int(job.params["batch_size"]),
        fisher_mode=str(job.params["fisher_mode"]),
        seed=int(job.params["seed"]),
        label_source=str(job.params["label_source"]),
        device=str(job.params["device"]),
        outputs={k: out[k] for k in OUTPUTS},
    )


def save_fisher(fisher: dict[str, torch.Tensor], path: str | Path) -> None:
    """Per-element Fisher as float32 safetensors, keys = tensor names, written atomically."""
    from safetensors.torch import save_file

    from asrprune.io import atomic_path

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in fisher.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"content": "diagonal Fisher, mean over utterances of squared per-utterance gradients"})


def run_sensitivity(
    model_dir: str | Path,
    calib_parquet: str | Path,
    out_dir: str | Path,
    *,
    n_utts: int,
    batch_size: int,
    fisher_mode: str = "empirical",
    seed: int = 0,
    label_source: str = "reference",
    method: str = "loop",
    device: str = "cpu",
    outputs: dict[str, str | Path] | None = None,
) -> None:
    """The sensitivity stage: tensors.parquet, components.parquet, fisher.safetensors, heatmap.png, calibration.json.

    `outputs` overrides single paths (keys tensors, components, fisher, heatmap, calibration);
    `device` is cpu, cuda or auto (CUDA when present); statistics are float32 either way.
    """
    from asrprune.batches import iter_batches, select_utterances
    from asrprune.io import read_split
    from asrprune.settings import resolve_device
    from asrprune.io import write_json, write_parquet
    from asrprune.labels import eos_ids
    from asrprune.models.load import generation_prompt_ids, load_model
    from asrprune.plots import plot_sensitivity_heatmap
    from asrprune.sensitivity import SCORES, component_rollup, per_utterance_fisher_and_taylor, sensitivity_tables

    out_dir = Path(out_dir)
    paths = {k: out_dir / f for k, f in [("tensors", "tensors.parquet"), ("components", "components.parquet"),
                                          ("fisher", "fisher.safetensors"), ("heatmap", "heatmap.png"),
                                          ("calibration", "calibration.json")]}
    paths.update({k: Path(v) for k, v in (outputs or {}).items()})
    torch.manual_seed(seed)

    dev = resolve_device(device)
    model, processor = load_model(model_dir, device=str(dev))
    prompt = generation_prompt_ids(model)
    df = select_utterances(read_split(calib_parquet), n_utts, seed)  # the utterances wanda's norms use too
    if len(df) < n_utts:
        log.warning("calibration split has %d utterances, fewer than n_utts=%d: using all", len(df), n_utts)
    batches = iter_batches(df, processor, batch_size, prompt_ids=prompt, eos_id=min(eos_ids(model)))
    t0 = time.perf_counter()
    result = per_utterance_fisher_and_taylor(
        model, batches, fisher_mode=fisher_mode, label_source=label_source, seed=seed, method=method, total=len(df)
    )
    seconds = time.perf_counter() - t0
    tensors = sensitivity_tables(model, result)
    rollup = component_rollup(tensors)
    meta = {"fisher_mode": fisher_mode, "label_source": label_source, "n_utts": result.n_utts, "seed": seed}
    write_parquet(tensors, paths["tensors"], metadata={"sensitivity": meta})
    write_parquet(rollup, paths["components"], metadata={"sensitivity": meta})
    save_fisher(result.fisher, paths["fisher"])
    plot_sensitivity_heatmap(rollup, paths["heatmap"], SCORES)
    write_json(
        {
            "n_utts": result.n_utts,
            "n_utts_requested": n_utts,
            "batch_size": batch_size,
            "fisher_mode": fisher_mode,
            "label_source": label_source,
            "seed": seed,
            "method": method,
            "loss": "sum of token cross-entropies per utterance (sequence NLL); prompt and padding excluded",
            "n_label_tokens": result.n_label_tokens,
            "ids": result.ids,
            "prompt_ids": prompt,
            "seconds": round(seconds, 3),
            "seconds_per_utt": round(seconds / max(result.n_utts, 1), 4),
            "torch_threads": torch.get_num_threads(),
            "device": str(dev),
            "model_dir": str(model_dir),
            "calib": str(calib_parquet),
        },
        paths["calibration"],
    )
    log.info("sensitivity: %d utterances, %d label tokens, %.1f s", result.n_utts, result.n_label_tokens, seconds)
