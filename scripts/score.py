"""Snakemake adapter: per-utterance alignment counts of one decode."""

from asrprune.runtime import setup_script

log = setup_script(snakemake.log[0], snakemake.threads)

import pandas as pd  # noqa: E402

from asrprune.io import write_parquet  # noqa: E402
from asrprune.metrics import score_frame  # noqa: E402

scores = score_frame(pd.read_parquet(snakemake.input[0]), snakemake.params.loop_min_repeats, where=snakemake.input[0])
write_parquet(scores, snakemake.output[0])
log.info("scored %d utterances", len(scores))
