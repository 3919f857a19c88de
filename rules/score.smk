rule score:
    input:
        f"{RESULTS}/decode/{{model}}/{{variant}}/{{dataset}}.parquet",
    output:
        f"{RESULTS}/scores/{{model}}/{{variant}}/{{dataset}}.parquet",
    params:
        loop_min_repeats=config["scoring"]["loop_min_repeats"],
    log:
        f"{RESULTS}/logs/score/{{model}}/{{variant}}/{{dataset}}.log",
    threads: threads_of("score")
    resources:
        **res("score"),
    conda:
        "../envs/asrprune.yaml"
    script:
        "../scripts/score.py"


rule aggregate:
    input:
        scores=get_all_scores,
        masks=get_all_mask_sets,
        predicted=expand(
            f"{RESULTS}/sensitivity/{{model}}/predicted.parquet", model=config["models"]
        ),
    output:
        table=report(
            f"{RESULTS}/tables/wer.parquet",
            caption="../report/wer.rst",
            category="Tables",
        ),
        csv=f"{RESULTS}/tables/wer.csv",
        correlation=f"{RESULTS}/tables/damage_correlation.parquet",
    params:
        scoring=config["scoring"],
        decoding=config["decoding"],
        config_hash=plan.config_hash(config),
    log:
        f"{RESULTS}/logs/aggregate.log",
    threads: threads_of("aggregate")
    resources:
        **res("aggregate"),
    conda:
        "../envs/asrprune.yaml"
    script:
        "../scripts/aggregate.py"
