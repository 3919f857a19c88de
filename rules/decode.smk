rule decode:
    input:
        model=lambda wildcards: model_dir(wildcards.model),
        masks=f"{EXP}/masks/{{model}}/{{variant}}",
        data=lambda wildcards: dataset_file(wildcards.dataset),
    output:
        f"{EXP}/decode/{{model}}/{{variant}}/{{dataset}}.parquet",
    log:
        f"{EXP}/logs/decode/{{model}}/{{variant}}/{{dataset}}.log",
    benchmark:
        f"{EXP}/benchmarks/decode/{{model}}/{{variant}}/{{dataset}}.tsv"
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("decode")
    resources:
        **res("decode"),
    params:
        # only what can change a transcript: backend and cache settings rerun nothing
        decoding=plan.transcript_settings(config),
        # Shared by every decode job, outside the DAG: encoder states of variants that leave a
        # prefix of the encoder untouched (asrprune/encoder_cache.py; capped by
        # execution.encoder_cache_mb, safe under concurrent jobs).
        cache_dir=f"{STORE}/cache/encoder",
    script:
        "../scripts/decode.py"
