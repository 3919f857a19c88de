# asrprune: find where Whisper can be pruned, prune it in one shot, and measure the word error rate.
#   prepare (model, data) -> sensitivity -> prune (mask sets) -> predict (damage) -> decode -> score
#   -> aggregate -> claims (verdicts, findings) -> report; one rule file per stage, in this order (export on request)
from snakemake.utils import min_version

min_version("9.0")


# The embedded default, unless the run brings its own config: a --configfile is a complete config
# (the default is not merged under it), and a module deployment passes `config:` (Snakemake then
# skips this file itself).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/prepare.smk"
include: "rules/sensitivity.smk"
include: "rules/prune.smk"
include: "rules/predict.smk"
include: "rules/decode.smk"
include: "rules/score.smk"
include: "rules/aggregate.smk"
include: "rules/claims.smk"
include: "rules/report.smk"
include: "rules/export.smk"


rule all:
    default_target: True
    input:
        get_final_targets(),
