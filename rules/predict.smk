rule predict_damage:
    input:
        model=f"{RESULTS}/models/{{model}}",
        fisher=f"{RESULTS}/sensitivity/{{model}}/fisher.safetensors",
        masks=get_pruned_mask_sets,
    output:
        f"{RESULTS}/sensitivity/{{model}}/predicted.parquet",
    log:
        f"{RESULTS}/logs/predict_damage/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict_damage/{{model}}.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("prune")
    resources:
        **res("prune"),
    script:
        "../scripts/predict_damage.py"
