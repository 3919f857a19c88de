rule claims:
    input:
        scores=get_all_scores,
        predicted=expand(
            f"{RESULTS}/sensitivity/{{model}}/predicted.parquet",
            model=config["models"],
        ),
        claims=CLAIMS,
    output:
        table=f"{RESULTS}/tables/claims.parquet",
        csv=report(
            f"{RESULTS}/tables/claims.csv",
            caption="../report/claims.rst",
            category="Tables",
        ),
        forest=report(
            f"{RESULTS}/plots/claims_forest.png",
            caption="../report/claims_forest.rst",
            category="Plots",
        ),
    log:
        f"{RESULTS}/logs/claims.log",
    benchmark:
        f"{RESULTS}/benchmarks/claims.tsv"
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
        claims=f"{RESULTS}/tables/claims.parquet",
        table=f"{RESULTS}/tables/wer.parquet",
        claims_file=CLAIMS,
        previous=plan.previous_claims(config),
    output:
        markdown=f"{FINDINGS}/findings.md",
        csv=f"{FINDINGS}/findings_claims.csv",
        effects=f"{FINDINGS}/findings_effects.png",
    log:
        f"{RESULTS}/logs/findings.log",
    benchmark:
        f"{RESULTS}/benchmarks/findings.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("aggregate")
    resources:
        **res("aggregate"),
    params:
        benchmarks=f"{RESULTS}/benchmarks",
        config_hash=plan.config_hash(config),
        config_name=config.get("name", "config"),
    script:
        "../scripts/findings.py"
