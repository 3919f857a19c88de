rule decode:
    input:
        model=f"{RESULTS}/models/{{model}}",
        masks=f"{RESULTS}/masks/{{model}}/{{variant}}",
        data=f"{RESULTS}/data/{{dataset}}.parquet",
    output:
        f"{RESULTS}/decode/{{model}}/{{variant}}/{{dataset}}.parquet",
    log:
        f"{RESULTS}/logs/decode/{{model}}/{{variant}}/{{dataset}}.log",
    conda:
        "../envs/asrprune.yaml"
    threads: threads_of("decode")
    resources:
        **res("decode"),
    params:
        decoding=config["decoding"],
    script:
        "../scripts/decode.py"
