"""Snakemake adapter: the calibration set shares nothing with a test set (asrprune.datasets.overlap)."""

from asrprune.runtime import setup_script

smk = snakemake  # noqa: F821 (injected by Snakemake's `script:` directive)
setup_script(smk.log[0], smk.threads)

from asrprune.datasets.overlap import check_calibration_overlap  # noqa: E402

check_calibration_overlap(
    smk.params.calibration,
    smk.input.calib,
    dict(zip(smk.params.tests, smk.input.tests)),
    smk.output[0],
    allow=bool(smk.params.allow_overlap),
)
