rule score:
    input:
        f"{RESULTS}/decode/{{model}}/{{variant}}/{{dataset}}.parquet",
    output:
        f"{RESULTS}/scores/{{model}}/{{variant}}/{{dataset}}.parquet",
    log:
        f"{RESULTS}/logs/score/{{model}}/{{variant}}/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score/{{model}}/{{variant}}/{{dataset}}.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("score")
    resources:
        **res("score"),
    params:
        loop_min_repeats=config["scoring"]["loop_min_repeats"],
    script:
        "../scripts/score.py"
