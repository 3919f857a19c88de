"""Snakemake adapter: a standalone Hugging Face directory of one pruned variant (asrprune.masks.export_variant)."""

import json
import logging
from pathlib import Path

from asrprune.masks import export_variant
from asrprune.models import load_model

from asrprune.runtime import setup_script

smk = snakemake  # noqa: F821 (injected by Snakemake)
setup_script(smk.log[0], smk.threads)

model, processor = load_model(smk.input.model)
base_manifest = json.loads((Path(smk.input.model) / "manifest.json").read_text())
manifest = export_variant(model, processor, smk.input.masks, base_manifest, smk.output[0])
logging.info("exported %s (%d nonzero parameters) to %s", manifest["name"], manifest["params_nonzero"], smk.output[0])
