rule prune:
    input:
        unpack(get_prune_input),
    output:
        masks=directory(f"{EXP}/masks/{{model}}/{{variant}}"),
    log:
        f"{EXP}/logs/prune/{{model}}/{{variant}}.log",
    benchmark:
        f"{EXP}/benchmarks/prune/{{model}}/{{variant}}.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("prune")
    resources:
        **res("prune"),
    params:
        prune=get_prune_params,
    script:
        "../scripts/prune.py"
