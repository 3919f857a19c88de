# Validation and target assembly. All logic lives in asrprune.plan / asrprune.config, which unit
# tests exercise without Snakemake; this file only adapts it.
import sys

sys.path.insert(0, workflow.basedir)

import copy

from asrprune import plan
from asrprune.config import (
    ConfigError,
    check_installed_packages,
    check_model_depths,
    load_yaml,
    validate_config,
)
from asrprune.datasets.manifest import content_sha256 as dataset_content_sha256
from asrprune.datasets.manifest import input_files as dataset_input_files
from asrprune.io import check_output_root

try:
    if workflow.overwrite_configfiles:
        # A --configfile is a complete config: the embedded default is not merged under it
        # (otherwise config/paper.yaml would inherit the default's offline datasets).
        for path in workflow.overwrite_configfiles:
            load_yaml(
                path
            )  # refuses duplicate keys (Snakemake's loader merges them) and aliases
        config.clear()
        config.update(copy.deepcopy(workflow.config_settings.overwrite_config))
    validate_config(config)
    # a pin typo must stop here: a changed spec reruns prepare_model, whose old output Snakemake
    # deletes before the job runs (and fails)
    check_installed_packages(config)
    # Snakemake compares dict params in key order: sorted keys make a reordered but equal
    # config rerun nothing.
    sorted_config = plan.sort_keys(config)
    config.clear()
    config.update(sorted_config)
except ConfigError as error:
    raise WorkflowError(str(error)) from None


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    dataset=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    variant=r"[a-z][a-z0-9_.-]*",


RESULTS = "results"
try:
    check_output_root(RESULTS)
except NotADirectoryError as error:
    raise WorkflowError(error.strerror) from None
try:
    # layer ranges against the depth of every model already known (a local one, or one prepared)
    check_model_depths(config, RESULTS)
except ConfigError as error:
    raise WorkflowError(str(error)) from None
CALIB = plan.calibration_set(config)
# The check_calibration rule's verdict: the calibration set shares nothing with a test set.
CALIB_CHECK = f"{RESULTS}/{plan.CALIBRATION_CHECK}"
FINDINGS = plan.findings_dir(config)
CLAIMS = plan.claims_file(config, workflow.basedir)


def get_final_targets():
    # Intermediates too: Snakemake rebuilds a missing file only when a job that must run asks for
    # it, so a deleted data set would otherwise stay missing while everything downstream exists.
    return plan.final_targets(config, RESULTS) + plan.intermediate_targets(
        config, RESULTS
    )


def res(rule_name):
    return plan.rule_resources(config, rule_name)


def threads_of(rule_name):
    return plan.rule_threads(config, rule_name)


def get_prepare_dataset_input(wildcards):
    spec = config["datasets"][wildcards.dataset]
    inputs = {"of": f"{RESULTS}/data/{spec['of']}.parquet"} if spec.get("of") else {}
    # A user's own files are inputs: a manifest and every clip it lists (or local Parquet files),
    # so editing one reruns this set's jobs. A malformed manifest stops here, before any job.
    try:
        inputs.update(dataset_input_files(spec))
    except ValueError as error:
        raise WorkflowError(f"datasets.{wildcards.dataset}: {error}") from None
    return inputs


_DATASET_CONTENT = {}


def get_prepare_dataset_spec(wildcards):
    """The spec, plus the sha256 of every file of the user's it reads: a clip replaced by other
    bytes reruns the set even when its mtime did not move (cp -p). Hashed once per DAG build.
    """
    spec = plan.dataset_spec(config, wildcards.dataset)
    if wildcards.dataset not in _DATASET_CONTENT:
        try:
            _DATASET_CONTENT[wildcards.dataset] = dataset_content_sha256(spec)
        except ValueError as error:
            raise WorkflowError(f"datasets.{wildcards.dataset}: {error}") from None
    if _DATASET_CONTENT[wildcards.dataset] is not None:
        spec["content_sha256"] = _DATASET_CONTENT[wildcards.dataset]
    return spec


def get_prune_input(wildcards):
    variant = plan.variant_by_id(config, wildcards.variant)
    inputs = {"model": f"{RESULTS}/models/{wildcards.model}"}
    if variant.needs_fisher:
        inputs["fisher"] = f"{RESULTS}/sensitivity/{wildcards.model}/fisher.safetensors"
    if variant.needs_activations:
        inputs["calib"] = f"{RESULTS}/data/{CALIB}.parquet"
        # tune only on a calibration set checked apart from the test sets (ancient: a test set's
        # change reruns the check, not this job)
        inputs["calib_check"] = ancient(CALIB_CHECK)
    return inputs


def get_prune_params(wildcards):
    """Only what changes the masks: calibration settings reach the methods that read calibration."""
    variant = plan.variant_by_id(config, wildcards.variant)
    params = {
        "method": variant.method,
        "target": variant.target,
        "sparsity": variant.percent,
    }
    params["seed"] = config["pruning"]["seed"]
    if variant.schedule is not None:
        # a schedule, or a variant matched to one: the schedule's definition decides the masks
        params["schedules"] = config["pruning"].get("schedules", {})
    if variant.needs_activations:
        calibration = config["calibration"]
        params["calib_utts"] = calibration["n_utts"]
        params["batch_size"] = calibration["batch_size"]
        params["calib_seed"] = calibration["seed"]  # the same utterances as the Fisher
    return params


def get_pruned_mask_sets(wildcards):
    return [
        f"{RESULTS}/masks/{wildcards.model}/{v.id}"
        for v in plan.variants(config)
        if v.id != plan.BASELINE
    ]


def get_all_scores(wildcards):
    return plan.score_targets(config, RESULTS)


def get_all_mask_sets(wildcards):
    return [
        f"{RESULTS}/masks/{m}/{v.id}"
        for m in config["models"]
        for v in plan.variants(config)
    ]
