rule predict_damage:
    input:
        model=lambda wildcards: model_dir(wildcards.model),
        fisher=f"{EXP}/sensitivity/{{model}}/fisher.safetensors",
        masks=get_pruned_mask_sets,
    output:
        f"{EXP}/sensitivity/{{model}}/predicted.parquet",
    log:
        f"{EXP}/logs/predict_damage/{{model}}.log",
    benchmark:
        f"{EXP}/benchmarks/predict_damage/{{model}}.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("prune")
    resources:
        **res("prune"),
    script:
        "../scripts/predict_damage.py"
