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
        spec=lambda wildcards: plan.dataset_spec(config, wildcards.dataset),
    script:
        "../scripts/prepare_dataset.py"
