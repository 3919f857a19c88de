rule export:
    input:
        model=f"{RESULTS}/models/{{model}}",
        masks=f"{RESULTS}/masks/{{model}}/{{variant}}",
    output:
        directory(f"{RESULTS}/export/{{model}}/{{variant}}"),
    log:
        f"{RESULTS}/logs/export/{{model}}/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/export/{{model}}/{{variant}}.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("prune")
    resources:
        **res("prune"),
    script:
        "../scripts/export.py"
