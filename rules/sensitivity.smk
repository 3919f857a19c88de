rule sensitivity:
    input:
        model=lambda wildcards: model_dir(wildcards.model),
        calib=dataset_file(CALIB),
        calib_check=ancient(CALIB_CHECK),
    output:
        tensors=f"{EXP}/sensitivity/{{model}}/tensors.parquet",
        components=f"{EXP}/sensitivity/{{model}}/components.parquet",
        fisher=f"{EXP}/sensitivity/{{model}}/fisher.safetensors",
        heatmap=report(
            f"{EXP}/sensitivity/{{model}}/heatmap.png",
            caption="../report/heatmap.rst",
            category="Sensitivity",
        ),
        calibration=f"{EXP}/sensitivity/{{model}}/calibration.json",
    log:
        f"{EXP}/logs/sensitivity/{{model}}.log",
    benchmark:
        f"{EXP}/benchmarks/sensitivity/{{model}}.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("sensitivity")
    resources:
        **res("sensitivity"),
    params:
        n_utts=config["calibration"]["n_utts"],
        batch_size=config["calibration"]["batch_size"],
        fisher_mode=config["calibration"]["fisher_mode"],
        label_source=config["calibration"]["label_source"],
        seed=config["calibration"]["seed"],
        # auto: CUDA when the job sees one (a GPU the rule's resources reserved), else CPU
        device=config["calibration"]["device"],
    script:
        "../scripts/sensitivity.py"
