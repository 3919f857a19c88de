rule claims:
    input:
        scores=get_all_scores,
        predicted=expand(
            f"{EXP}/sensitivity/{{model}}/predicted.parquet",
            model=config["models"],
        ),
        claims=CLAIMS,
    output:
        table=f"{EXP}/tables/claims.parquet",
        csv=report(
            f"{EXP}/tables/claims.csv",
            caption="../report/claims.rst",
            category="Tables",
        ),
        forest=report(
            f"{EXP}/plots/claims_forest.png",
            caption="../report/claims_forest.rst",
            category="Plots",
        ),
    log:
        f"{EXP}/logs/claims.log",
    benchmark:
        f"{EXP}/benchmarks/claims.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("aggregate")
    resources:
        **res("aggregate"),
    params:
        test_sets=plan.evaluation_sets(config),
        scoring=config["scoring"],
    script:
        "../scripts/claims.py"


rule findings:
    input:
        claims=f"{EXP}/tables/claims.parquet",
        table=f"{EXP}/tables/wer.parquet",
        claims_file=CLAIMS,
        previous=plan.previous_claims(config),
    output:
        markdown=f"{FINDINGS}/findings.md",
        csv=f"{FINDINGS}/findings_claims.csv",
        effects=f"{FINDINGS}/findings_effects.png",
    log:
        f"{EXP}/logs/findings.log",
    benchmark:
        f"{EXP}/benchmarks/findings.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("aggregate")
    resources:
        **res("aggregate"),
    params:
        benchmarks=f"{EXP}/benchmarks",
        # the shared jobs this experiment used (models, data sets), wherever they ran first
        store_benchmarks=layout.store_benchmarks(config, STORE),
        config_hash=plan.config_hash(config),
        config_name=config.get("name", "config"),
    script:
        "../scripts/findings.py"
