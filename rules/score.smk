rule score:
    input:
        f"{EXP}/decode/{{model}}/{{variant}}/{{dataset}}.parquet",
    output:
        f"{EXP}/scores/{{model}}/{{variant}}/{{dataset}}.parquet",
    log:
        f"{EXP}/logs/score/{{model}}/{{variant}}/{{dataset}}.log",
    benchmark:
        f"{EXP}/benchmarks/score/{{model}}/{{variant}}/{{dataset}}.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("score")
    resources:
        **res("score"),
    params:
        loop_min_repeats=config["scoring"]["loop_min_repeats"],
    script:
        "../scripts/score.py"
