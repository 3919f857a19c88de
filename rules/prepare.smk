# Shared work: a prepared model and a built data set go into the store under a key of their
# definition (asrprune.layout.Layout), once for every experiment that asks for the same thing.
rule prepare_model:
    output:
        model_dir=directory(f"{STORE}/models/{{model}}-{{key}}"),
    log:
        f"{STORE}/logs/prepare_model/{{model}}-{{key}}.log",
    benchmark:
        f"{STORE}/benchmarks/prepare_model/{{model}}-{{key}}.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("prepare_model")
    resources:
        **res("prepare_model"),
    params:
        spec=get_prepare_model_params,
    script:
        "../scripts/prepare_model.py"


rule prepare_dataset:
    input:
        unpack(get_prepare_dataset_input),
    output:
        f"{STORE}/data/{{dataset}}-{{key}}.parquet",
    log:
        f"{STORE}/logs/prepare_dataset/{{dataset}}-{{key}}.log",
    benchmark:
        f"{STORE}/benchmarks/prepare_dataset/{{dataset}}-{{key}}.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("prepare_dataset")
    resources:
        **res("prepare_dataset"),
    params:
        spec=get_dataset_spec,
    script:
        "../scripts/prepare_dataset.py"


# Where a user finds an experiment's data: results/{name}/data/{dataset}.parquet, a relative link to
# the store file its definition names (the rules read the store file itself).
rule link_dataset:
    input:
        lambda wildcards: dataset_file(wildcards.dataset),
    output:
        f"{EXP}/data/{{dataset}}.parquet",
    log:
        f"{EXP}/logs/link_dataset/{{dataset}}.log",
    localrule: True
    conda:
        "../envs/asrprune.yaml"
    script:
        "../scripts/link_dataset.py"


# The calibration set shares no id, normalized transcript or recording with any test set
# (asrprune.datasets.overlap). Sensitivity and wanda wait for it (as an ancient input: a test set's
# change reruns this check, not them); aggregate reads it, so no table is written over an overlap.
rule check_calibration:
    input:
        calib=dataset_file(CALIB),
        tests=[dataset_file(d) for d in plan.evaluation_sets(config)],
    output:
        CALIB_CHECK,
    log:
        f"{EXP}/logs/check_calibration.log",
    benchmark:
        f"{EXP}/benchmarks/check_calibration.tsv"
    priority: 50
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("prepare_dataset")
    resources:
        **res("prepare_dataset"),
    params:
        calibration=CALIB,
        tests=plan.evaluation_sets(config),
        allow_overlap=bool(config["calibration"].get("allow_overlap", False)),
    script:
        "../scripts/check_calibration.py"
