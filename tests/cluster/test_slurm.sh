#!/usr/bin/env bash
# End-to-end SLURM test: install and start a single-node SLURM cluster with 2 fake GPUs
# (.ci/slurm), run a workflow through `snakemake --executor slurm --profile profiles/slurm`,
# check in sacct that every job COMPLETED and that the GPU rules asked for (--gpus=N) and got
# (AllocTRES gres/gpu=N) their GPUs, print the sacct table, stop the cluster. Needs root.
#
# Usage: tests/cluster/test_slurm.sh [options] [-- extra snakemake args]
#   --workflow-dir D   directory of the workflow's Snakefile (default: tests/cluster/mini); it runs
#                      with -s D/Snakefile --directory DIR/work from D, so its results go to scratch
#   --in-place         run with D itself as the working directory (results under D)
#   --configfile F     passed to snakemake
#   --target T         target rule or file (repeatable; default: the workflow's first rule)
#   --gpu-rules RE     exactly the rules whose name fully matches RE must get GPUs
#                      (default: 'gpu_work' for the mini workflow, '' = none otherwise)
#   --jobs N           SLURM jobs in flight (default 4)
#   --timeout S        limit for the snakemake run in seconds (default 600)
#   --init-seconds S   --slurm-init-seconds-before-status-checks (default 1; the plugin then adds
#                      10 s to its polling interval after each poll that finds no job finished)
#   --dir D            cluster state/scratch directory (default: a new /tmp/asrprune-slurm.XXXXXX)
#   --keep             keep that directory afterwards (it is removed on success otherwise)
# Exit status: 0 if everything passed.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
WFDIR=""
CONFIGFILE=""
TARGETS=()
GPU_RULES=""
GPU_RULES_SET=0
JOBS=4
TIMEOUT=600
INIT_S=1
DIR=""
KEEP=0
IN_PLACE=0
WORK=""
EXTRA=()
while [ $# -gt 0 ]; do
    case $1 in
    --workflow-dir) WFDIR=$(realpath "$2"); shift 2 ;;
    --configfile) CONFIGFILE=$(realpath "$2"); shift 2 ;;
    --target) TARGETS+=("$2"); shift 2 ;;
    --gpu-rules) GPU_RULES=$2; GPU_RULES_SET=1; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --init-seconds) INIT_S=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --in-place) IN_PLACE=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "test_slurm.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" -ne 0 ]; then
    echo "test_slurm.sh: needs root (it installs and starts SLURM daemons)" >&2
    exit 1
fi

SNAKEMAKE=$REPO/.venv/bin/snakemake
[ -x "$SNAKEMAKE" ] || SNAKEMAKE=$(command -v snakemake) || { echo "test_slurm.sh: no snakemake" >&2; exit 1; }
PYTHON=$(dirname "$SNAKEMAKE")/python3
[ -x "$PYTHON" ] || PYTHON=python3
[ -n "$DIR" ] || DIR=$(mktemp -d /tmp/asrprune-slurm.XXXXXX)
mkdir -p "$DIR"
DIR=$(realpath "$DIR")

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }
T0=$(now)
RC=1
T_UP="" T_RUN="" T_CHECK=""
finish() {
    local t t_stop
    t=$(now)
    "$REPO/.ci/slurm/stop.sh" "$DIR" >"$DIR/stop.log" 2>&1 || { echo "test_slurm.sh: stop.sh failed:"; cat "$DIR/stop.log"; RC=1; }
    t_stop=$(secs "$t" "$(now)")
    echo "test_slurm.sh: timings: cluster up ${T_UP:-?}s, snakemake ${T_RUN:-?}s, checks ${T_CHECK:-?}s," \
        "stop ${t_stop}s, total $(secs "$T0" "$(now)")s"
    if [ "$RC" -eq 0 ] && [ "$KEEP" -eq 0 ]; then
        rm -rf "$DIR"
    else
        echo "test_slurm.sh: logs kept in $DIR (log/: the daemons; snakemake.log; SLURM job logs: $WORK/.snakemake/slurm_logs)"
    fi
    if [ "$RC" -eq 0 ]; then echo "test_slurm.sh: PASS"; else echo "test_slurm.sh: FAIL"; fi
    exit "$RC"
}
trap finish EXIT
trap 'exit 1' INT TERM

# 1. Cluster.
"$REPO/.ci/slurm/install.sh" >"$DIR/install.log" 2>&1 || { echo "test_slurm.sh: install.sh failed:"; tail -20 "$DIR/install.log"; exit 1; }
"$REPO/.ci/slurm/start.sh" "$DIR"
T_UP=$(secs "$T0" "$(now)")

# 2. Workflow.
SMARGS=(--executor slurm --profile "$REPO/profiles/slurm" --jobs "$JOBS"
    --slurm-init-seconds-before-status-checks "$INIT_S" --latency-wait 5 --retries 0 --verbose)
if [ -z "$WFDIR" ]; then
    WFDIR=$REPO/tests/cluster/mini
    [ "$GPU_RULES_SET" -eq 1 ] || GPU_RULES=gpu_work
    if [ -z "$CONFIGFILE" ]; then
        # Account and partition as rule resources from the config, as the real workflow takes
        # them (a --config after -- adds to this file, e.g. --config fail_rule=gpu_work gpu=2).
        CONFIGFILE=$DIR/mini-config.yaml
        printf 'slurm_account: asrprune\nslurm_partition: main\n' >"$CONFIGFILE"
    fi
fi
[ -f "$WFDIR/Snakefile" ] || { echo "test_slurm.sh: no $WFDIR/Snakefile" >&2; exit 1; }
if [ "$IN_PLACE" -eq 1 ]; then
    WORK=$WFDIR
else
    WORK=$DIR/work
    rm -rf "$WORK"
    mkdir -p "$WORK"
fi
SMARGS+=(-s "$WFDIR/Snakefile" --directory "$WORK")
[ -z "$CONFIGFILE" ] || SMARGS+=(--configfile "$CONFIGFILE")
echo "test_slurm.sh: running snakemake in $WORK (log: $DIR/snakemake.log)"
T1=$(now)
set +e
(cd "$WFDIR" && timeout -k 15 "$TIMEOUT" "$SNAKEMAKE" "${TARGETS[@]}" "${SMARGS[@]}" "${EXTRA[@]}") \
    >"$DIR/snakemake.log" 2>&1
SMRC=$?
set -e  # (targets go first: options such as --configfile and --config take several values)
T_RUN=$(secs "$T1" "$(now)")
echo "test_slurm.sh: snakemake exited $SMRC after ${T_RUN}s"
if [ "$SMRC" -ne 0 ]; then
    [ "$SMRC" -ne 124 ] || echo "test_slurm.sh: snakemake timed out after ${TIMEOUT}s"
    echo "--- last 40 lines of $DIR/snakemake.log"
    tail -n 40 "$DIR/snakemake.log"
fi

# 3. Checks (also run after a failed snakemake, for the sacct table).
T2=$(now)
set +e
"$PYTHON" "$REPO/tests/cluster/check_slurm_run.py" --log "$DIR/snakemake.log" --gpu-rules "$GPU_RULES"
CHECKRC=$?
set -e
T_CHECK=$(secs "$T2" "$(now)")
if [ "$WFDIR" = "$REPO/tests/cluster/mini" ] && [ -f "$WORK/out/summary.txt" ]; then
    echo "test_slurm.sh: mini workflow output:"
    sed 's/^/  /' "$WORK/out/summary.txt"
fi
[ "$SMRC" -eq 0 ] && [ "$CHECKRC" -eq 0 ] && RC=0 || RC=1
