rule decode:
    input:
        model=f"{RESULTS}/models/{{model}}",
        masks=f"{RESULTS}/masks/{{model}}/{{variant}}",
        data=f"{RESULTS}/data/{{dataset}}.parquet",
    output:
        f"{RESULTS}/decode/{{model}}/{{variant}}/{{dataset}}.parquet",
    params:
        decoding=config["decoding"],
    log:
        f"{RESULTS}/logs/decode/{{model}}/{{variant}}/{{dataset}}.log",
    threads: threads_of("decode")
    resources:
        **res("decode"),
    conda:
        "../envs/asrprune.yaml"
    script:
        "../scripts/decode.py"
