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


rule aggregate:
    input:
        scores=get_all_scores,
        masks=get_all_mask_sets,
        predicted=expand(
            f"{RESULTS}/sensitivity/{{model}}/predicted.parquet",
            model=config["models"],
        ),
        calib_check=CALIB_CHECK,
    output:
        table=f"{RESULTS}/tables/wer.parquet",
        csv=report(
            f"{RESULTS}/tables/wer.csv",
            caption="../report/wer.rst",
            category="Tables",
        ),
        correlation=f"{RESULTS}/tables/damage_correlation.parquet",
    log:
        f"{RESULTS}/logs/aggregate.log",
    benchmark:
        f"{RESULTS}/benchmarks/aggregate.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("aggregate")
    resources:
        **res("aggregate"),
    params:
        scoring=config["scoring"],
        decoding=config["decoding"],
        config_hash=plan.config_hash(config),
    script:
        "../scripts/aggregate.py"
