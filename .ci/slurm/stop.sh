#!/usr/bin/env bash
# Stop the test cluster that .ci/slurm/start.sh DIR started: cancel its jobs, then stop
# slurmd, slurmctld, slurmdbd, mariadbd and munged, each by the PID file under DIR/state,
# and wait until each is gone. Safe to run twice, and on a DIR where start.sh failed half-way.
# Usage: .ci/slurm/stop.sh DIR
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
DIR=$(realpath -m "$1")
S=$DIR/state

alive() { # alive PID NAME: is PID running and is its command NAME (guards against PID reuse)?
    local pid=$1 name=$2 comm
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ "$comm" = "$name" ]
}

read_pid() { # read_pid FILE: its first number, or nothing
    [ -f "$1" ] && head -n1 "$1" | tr -dc '0-9'
}

# 1. Cancel the cluster's jobs while slurmctld still answers, so no slurmstepd or job step outlives slurmd.
if alive "$(read_pid "$S/slurmctld.pid")" slurmctld; then
    if [ -n "$(timeout 10 squeue -h -o %i 2>/dev/null)" ]; then
        echo "stop.sh: cancelling jobs: $(timeout 10 squeue -h -o %i | tr '\n' ' ')"
        timeout 10 scancel --full --user=root 2>/dev/null || true
        for _ in $(seq 100); do
            [ -z "$(timeout 10 squeue -h -t R,CG,PD -o %i 2>/dev/null)" ] && break
            sleep 0.1
        done
    fi
    # Any process a job left behind on the node (scontrol listpids asks slurmd).
    if alive "$(read_pid "$S/slurmd.pid")" slurmd; then
        for pid in $(timeout 10 scontrol listpids 2>/dev/null | awk 'NR>1 && $1 ~ /^[0-9]+$/ {print $1}'); do
            kill -KILL "$pid" 2>/dev/null || true
        done
    fi
fi

stop_group() { # stop_group NAME... : SIGTERM each (PID file DIR/state/NAME.pid) at once, wait up to 15 s, then SIGKILL
    local name pid i left
    local -A pids=()
    for name in "$@"; do
        pid=$(read_pid "$S/$name.pid")
        if alive "$pid" "$name"; then
            pids[$name]=$pid
            kill -TERM "$pid" 2>/dev/null || true
        else
            rm -f "$S/$name.pid"
        fi
    done
    for i in $(seq 200); do # 15 s of SIGTERM, then 5 s after SIGKILL
        left=0
        for name in "${!pids[@]}"; do
            if alive "${pids[$name]}" "$name"; then
                left=1
                if [ "$i" -eq 150 ]; then
                    echo "stop.sh: $name (${pids[$name]}) ignored SIGTERM for 15 s; sending SIGKILL" >&2
                    kill -KILL "${pids[$name]}" 2>/dev/null || true
                fi
            else
                echo "stop.sh: stopped $name (${pids[$name]})"
                rm -f "$S/$name.pid"
                unset "pids[$name]"
            fi
        done
        [ "$left" -eq 0 ] && return 0
        sleep 0.1
    done
    echo "stop.sh: could not stop: ${!pids[*]}" >&2
    return 1
}

# slurm daemons first (they still need munge and the database on the way down), then slurmdbd,
# then the database and munge.
rc=0
stop_group slurmd slurmctld || rc=1
stop_group slurmdbd || rc=1
stop_group mariadbd munged || rc=1

# Remove the configs start.sh rendered for this DIR: with a slurm.conf but no slurmctld, every
# SLURM client call waits ~10 s, and so does every snakemake start (the slurm executor plugin runs
# `scontrol show config` when it is imported).
if [ "$rc" -eq 0 ]; then
    for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf /etc/slurm/slurmdbd.conf; do
        if [ -f "$f" ] && grep -q "Rendered by .ci/slurm/start.sh" "$f" && grep -q "$DIR/" "$f"; then
            rm -f "$f"
        fi
    done
fi
exit $rc
