rule prepare_model:
    output:
        model_dir=directory(f"{RESULTS}/models/{{model}}"),
    log:
        f"{RESULTS}/logs/prepare_model/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_model/{{model}}.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("prepare_model")
    resources:
        **res("prepare_model"),
    params:
        spec=lambda wildcards: config["models"][wildcards.model],
    script:
        "../scripts/prepare_model.py"


rule prepare_dataset:
    input:
        unpack(get_prepare_dataset_input),
    output:
        f"{RESULTS}/data/{{dataset}}.parquet",
    log:
        f"{RESULTS}/logs/prepare_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_dataset/{{dataset}}.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("prepare_dataset")
    resources:
        **res("prepare_dataset"),
    params:
        spec=get_prepare_dataset_spec,
    script:
        "../scripts/prepare_dataset.py"


# The calibration set shares no id, normalized transcript or recording with any test set
# (asrprune.datasets.overlap). Sensitivity and wanda wait for it (as an ancient input: a test set's
# change reruns this check, not them); aggregate reads it, so no table is written over an overlap.
rule check_calibration:
    input:
        calib=f"{RESULTS}/data/{CALIB}.parquet",
        tests=expand(
            f"{RESULTS}/data/{{dataset}}.parquet", dataset=plan.evaluation_sets(config)
        ),
    output:
        CALIB_CHECK,
    log:
        f"{RESULTS}/logs/check_calibration.log",
    benchmark:
        f"{RESULTS}/benchmarks/check_calibration.tsv"
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
