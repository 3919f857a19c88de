"""Snakemake adapter: per-tensor sensitivity (Taylor score, per-utterance Fisher) of one model on the calibration split."""

from pathlib import Path

from asrprune.runtime import setup_script
from asrprune.sensitivity import run_sensitivity

smk = snakemake  # noqa: F821 (injected by Snakemake)
setup_script(smk.log[0], smk.threads)
out = smk.output
run_sensitivity(
    smk.input.model,
    smk.input.calib,
    out_dir=Path(out.tensors).parent,
    n_utts=int(smk.params.n_utts),
    batch_size=int(smk.params.batch_size),
    fisher_mode=str(smk.params.fisher_mode),
    seed=int(smk.params.seed),
    label_source=str(smk.params.label_source),
    device=str(smk.params.device),
    outputs={k: getattr(out, k) for k in ("tensors", "components", "fisher", "heatmap", "calibration")},
)
