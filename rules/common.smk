# Validation and target assembly. All logic lives in asrprune.plan / asrprune.layout / asrprune.config, which unit
# tests exercise without Snakemake; this file only adapts it.
import os
import sys

# This checkout's library when asrprune is not installed (a module deployment from a local path
# included; an installed asrprune, e.g. the conda environment's, is used as it is).
WORKFLOW_DIR = os.path.dirname(str(workflow.current_basedir))
try:
    import asrprune  # noqa: F401
except ImportError:
    sys.path.insert(0, WORKFLOW_DIR)

from asrprune import layout, plan
from asrprune.config import validate_config
from asrprune.settings import ConfigError
from asrprune.strict_yaml import load_yaml
from asrprune.datasets.manifest import content_sha256 as dataset_content_sha256
from asrprune.datasets.manifest import input_files as dataset_input_files
from asrprune.io import check_output_root, read_json_or_none, write_json
from asrprune.models.load import known_depth
from asrprune.preflight import check_installed_packages, check_model_depths
from asrprune.variants import BASELINE

try:
    for path in workflow.overwrite_configfiles:
        load_yaml(
            path
        )  # refuses duplicate keys (Snakemake's loader merges them) and aliases
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
    key=r"[0-9a-f]{12}",


# results/{name}/ holds what this experiment computes; results/store/ what any experiment can share
# (models, data sets, encoder states), keyed by its definition (asrprune.layout.Layout).
LAYOUT = layout.experiment_layout(config)
EXP = LAYOUT.experiment
STORE = LAYOUT.store
# The config files this experiment comes from, recorded in results/{name}/experiment.json
CONFIG_SOURCES = sorted({os.path.abspath(p) for p in workflow.configfiles})
CONFIG_HASH = plan.config_hash(config)
try:
    check_output_root(LAYOUT.root)
except NotADirectoryError as error:
    raise WorkflowError(error.strerror) from None
LEGACY = layout.legacy_outputs(LAYOUT.root)
if LEGACY:
    raise WorkflowError(layout.legacy_layout_message(LAYOUT.root, LEGACY, LAYOUT.name))
try:
    layout.check_experiment_record(
        read_json_or_none(f"{EXP}/{layout.EXPERIMENT_RECORD}"),
        CONFIG_SOURCES,
        CONFIG_HASH,
        LAYOUT.name,
        f"{EXP}/{layout.EXPERIMENT_RECORD}",
    )
    # layer ranges against the depth of every model already known (a local one, or one prepared)
    check_model_depths(
        config,
        {
            m: known_depth(spec, layout.model_dir(config, m, STORE))
            for m, spec in config["models"].items()
        },
    )
except (ValueError, ConfigError) as error:
    raise WorkflowError(str(error)) from None
CALIB = plan.calibration_set(config)
# The check_calibration rule's verdict: the calibration set shares nothing with a test set.
CALIB_CHECK = f"{EXP}/{plan.CALIBRATION_CHECK}"
FINDINGS = plan.findings_dir(config, EXP)
CLAIMS = plan.claims_file(config, WORKFLOW_DIR)
# The claims, read once: which (variant, set) pairs they need decoded (asrprune.plan.decode_pairs)
try:
    PLANNED_CLAIMS = plan.config_claims(config, WORKFLOW_DIR)
except (OSError, ValueError) as error:
    raise WorkflowError(str(error)) from None


# What defines this experiment and where it came from (config files, hash, store paths): written when
# a run starts (never by a dry run), and read above by the next run, which refuses another config
# under the same name. Not a rule: a config edit would rerun it and show in every dry run.
onstart:
    write_json(
        layout.experiment_record(config, CONFIG_SOURCES, CONFIG_HASH, STORE),
        f"{EXP}/{layout.EXPERIMENT_RECORD}",
    )


def model_dir(model):
    """The prepared model in the store."""
    return layout.model_dir(config, model, STORE)


def dataset_file(dataset):
    """The built data set in the store."""
    return layout.dataset_file(config, dataset, STORE)


def get_final_targets():
    # Intermediates too: Snakemake rebuilds a missing file only when a job that must run asks for
    # it, so a deleted data set would otherwise stay missing while everything downstream exists.
    return plan.final_targets(config, EXP) + plan.intermediate_targets(
        config, EXP, STORE, PLANNED_CLAIMS
    )


def res(rule_name):
    return plan.rule_resources(config, rule_name)


def threads_of(rule_name):
    return plan.rule_threads(config, rule_name)


def get_prepare_model_params(wildcards):
    """The model's config entry, for the store key it is asked under (no other definition's)."""
    try:
        layout.check_store_key(
            "model",
            wildcards.model,
            wildcards.key,
            layout.model_key(config, wildcards.model),
        )
    except (KeyError, ValueError) as error:
        raise WorkflowError(f"prepare_model: {error}") from None
    return config["models"][wildcards.model]


_DATASET_CONTENT = {}


def get_dataset_spec(wildcards):
    """The data set's spec, for the store key it is asked under (no other definition's)."""
    try:
        layout.check_store_key(
            "dataset",
            wildcards.dataset,
            wildcards.key,
            layout.dataset_key(config, wildcards.dataset),
        )
    except (KeyError, ValueError) as error:
        raise WorkflowError(f"prepare_dataset: {error}") from None
    spec = layout.dataset_spec(config, wildcards.dataset)
    # The sha256 of every file of the user's it reads: a clip replaced by other bytes reruns the set
    # even when its mtime did not move (cp -p). Hashed once per DAG build.
    if wildcards.dataset not in _DATASET_CONTENT:
        try:
            _DATASET_CONTENT[wildcards.dataset] = dataset_content_sha256(spec)
        except ValueError as error:
            raise WorkflowError(f"datasets.{wildcards.dataset}: {error}") from None
    if _DATASET_CONTENT[wildcards.dataset] is not None:
        spec["content_sha256"] = _DATASET_CONTENT[wildcards.dataset]
    return spec


def get_prepare_dataset_input(wildcards):
    spec = config["datasets"][wildcards.dataset]
    inputs = {"of": dataset_file(spec["of"])} if spec.get("of") else {}
    # A user's own files are inputs: a manifest and every clip it lists (or local Parquet files),
    # so editing one reruns this set's jobs. A malformed manifest stops here, before any job.
    try:
        inputs.update(dataset_input_files(spec))
    except ValueError as error:
        raise WorkflowError(f"datasets.{wildcards.dataset}: {error}") from None
    return inputs


def get_prune_input(wildcards):
    variant = plan.variant_by_id(config, wildcards.variant)
    inputs = {"model": model_dir(wildcards.model)}
    if variant.needs_fisher:
        inputs["fisher"] = f"{EXP}/sensitivity/{wildcards.model}/fisher.safetensors"
    if variant.needs_activations:
        inputs["calib"] = dataset_file(CALIB)
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
        f"{EXP}/masks/{wildcards.model}/{v.id}"
        for v in plan.variants(config)
        if v.id != BASELINE
    ]


def get_all_scores(wildcards):
    return plan.score_targets(config, EXP, PLANNED_CLAIMS)


def get_all_mask_sets(wildcards):
    return [
        f"{EXP}/masks/{m}/{v.id}"
        for m in config["models"]
        for v in plan.variants(config)
    ]
