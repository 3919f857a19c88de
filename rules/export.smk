rule export:
    input:
        model=lambda wildcards: model_dir(wildcards.model),
        masks=f"{EXP}/masks/{{model}}/{{variant}}",
    output:
        directory(f"{EXP}/export/{{model}}/{{variant}}"),
    log:
        f"{EXP}/logs/export/{{model}}/{{variant}}.log",
    benchmark:
        f"{EXP}/benchmarks/export/{{model}}/{{variant}}.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("prune")
    resources:
        **res("prune"),
    script:
        "../scripts/export.py"
