rule sensitivity:
    input:
        model=f"{RESULTS}/models/{{model}}",
        calib=f"{RESULTS}/data/{CALIB}.parquet",
        calib_check=ancient(CALIB_CHECK),
    output:
        tensors=f"{RESULTS}/sensitivity/{{model}}/tensors.parquet",
        components=f"{RESULTS}/sensitivity/{{model}}/components.parquet",
        fisher=f"{RESULTS}/sensitivity/{{model}}/fisher.safetensors",
        heatmap=report(
            f"{RESULTS}/sensitivity/{{model}}/heatmap.png",
            caption="../report/heatmap.rst",
            category="Sensitivity",
        ),
        calibration=f"{RESULTS}/sensitivity/{{model}}/calibration.json",
    log:
        f"{RESULTS}/logs/sensitivity/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sensitivity/{{model}}.tsv"
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
