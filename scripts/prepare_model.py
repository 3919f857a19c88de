"""Snakemake adapter: results/models/{model}/, a standalone float32 HF Whisper directory + manifest.json."""

from asrprune.runtime import setup_script

smk = snakemake  # noqa: F821 (injected by Snakemake's `script:` directive)
log = setup_script(smk.log[0], smk.threads)

from asrprune.models import prepare_model  # noqa: E402

manifest = prepare_model(smk.wildcards.model, dict(smk.params.spec), smk.output.model_dir)
log.info("model %s ready: %d parameters, weights %s", manifest["name"], manifest["n_params"], manifest["weights_sha256"])
