rule plots:
    input:
        table=f"{RESULTS}/tables/wer.parquet",
        correlation=f"{RESULTS}/tables/damage_correlation.parquet",
    output:
        wer_vs_sparsity=report(
            f"{RESULTS}/plots/wer_vs_sparsity.png",
            caption="../report/wer_vs_sparsity.rst",
            category="Plots",
        ),
        delta_wer=report(
            f"{RESULTS}/plots/delta_wer.png",
            caption="../report/delta_wer.rst",
            category="Plots",
        ),
        predicted_vs_measured=report(
            f"{RESULTS}/plots/predicted_vs_measured.png",
            caption="../report/predicted_vs_measured.rst",
            category="Plots",
        ),
    log:
        f"{RESULTS}/logs/plots.log",
    benchmark:
        f"{RESULTS}/benchmarks/plots.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("aggregate")
    resources:
        **res("aggregate"),
    script:
        "../scripts/plots.py"


rule findings:
    input:
        claims=f"{RESULTS}/tables/claims.parquet",
        table=f"{RESULTS}/tables/wer.parquet",
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
