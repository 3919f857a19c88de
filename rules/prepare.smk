rule prepare_model:
    output:
        model_dir=directory(f"{RESULTS}/models/{{model}}"),
    params:
        spec=lambda wildcards: config["models"][wildcards.model],
    log:
        f"{RESULTS}/logs/prepare_model/{{model}}.log",
    threads: threads_of("prepare_model")
    resources:
        **res("prepare_model"),
    conda:
        "../envs/asrprune.yaml"
    script:
        "../scripts/prepare_model.py"


rule prepare_dataset:
    input:
        unpack(get_prepare_dataset_input),
    output:
        f"{RESULTS}/data/{{dataset}}.parquet",
    params:
        spec=lambda wildcards: plan.dataset_spec(config, wildcards.dataset),
    log:
        f"{RESULTS}/logs/prepare_dataset/{{dataset}}.log",
    threads: threads_of("prepare_dataset")
    resources:
        **res("prepare_dataset"),
    conda:
        "../envs/asrprune.yaml"
    script:
        "../scripts/prepare_dataset.py"
