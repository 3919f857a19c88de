#!/usr/bin/env bash
# Start a single-node SLURM 22.05 test cluster (munge, MariaDB, slurmdbd, slurmctld, slurmd) with
# 2 fake GPUs. Every daemon runs as root and keeps its state, logs and PID file under DIR; the only
# system paths touched are /etc/slurm/{slurm,gres,slurmdbd}.conf and the sockets in /run/munge and
# /run/mysqld. Everything listens on loopback or unix sockets (slurm's ports 6817-6819 have no bind
# option in 22.05, but every address configured is 127.0.0.1). Run .ci/slurm/install.sh first.
# Usage: .ci/slurm/start.sh DIR      then  .ci/slurm/stop.sh DIR
# Env: SLURM_TEST_NGPU (2), SLURM_TEST_GPU_TYPE (fake), SLURM_TEST_WAIT_S (60).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "start.sh: must be run as root" >&2
    exit 1
fi
for b in munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd sinfo sacctmgr; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || {
        echo "start.sh: $b not found; run .ci/slurm/install.sh first" >&2
        exit 1
    }
done
export PATH=$PATH:/usr/sbin:/sbin

HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
DIR=$(realpath "$1")
S=$DIR/state
L=$DIR/log
NGPU=${SLURM_TEST_NGPU:-2}
GPUTYPE=${SLURM_TEST_GPU_TYPE:-fake}
WAIT_S=${SLURM_TEST_WAIT_S:-60}
ETC=/etc/slurm
MYSOCK=/run/mysqld/mysqld.sock
MARKER="Rendered by .ci/slurm/start.sh"
T0=$(date +%s.%N)

log() { printf 'start.sh [%5.1fs] %s\n' "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')" "$*"; }
fail() {
    echo "start.sh: FAILED: $*" >&2
    for f in "$L"/*.log; do
        [ -s "$f" ] && { echo "--- tail $f" >&2; tail -n 15 "$f" >&2; }
    done
    "$HERE/stop.sh" "$DIR" >&2 || true
    exit 1
}
wait_for() { # wait_for WHAT CMD...: poll CMD every 0.1 s for up to WAIT_S seconds
    local what=$1
    shift
    for _ in $(seq $((WAIT_S * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "timed out after ${WAIT_S}s waiting for $what"
}
pid_alive() { local p; p=$(head -n1 "$1" 2>/dev/null | tr -dc '0-9'); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# A second start on the same DIR restarts the cluster.
"$HERE/stop.sh" "$DIR" >/dev/null
# Daemons of another cluster (another DIR, or the system's) would hold the sockets and ports.
for d in munged mariadbd slurmdbd slurmctld slurmd; do
    if pgrep -x "$d" >/dev/null; then
        echo "start.sh: a $d not started from $DIR is running (pid $(pgrep -x "$d" | tr '\n' ' '));" \
            "stop it first (.ci/slurm/stop.sh OTHER_DIR)" >&2
        exit 1
    fi
done
for f in slurm.conf gres.conf slurmdbd.conf; do
    if [ -s "$ETC/$f" ] && ! grep -q "$MARKER" "$ETC/$f"; then
        echo "start.sh: $ETC/$f exists and was not written by this script; refusing to overwrite it" >&2
        exit 1
    fi
done

mkdir -p "$S/ctld" "$S/d" "$S/munge" "$L" "$DIR/fakegpu" /run/munge /run/mysqld "$ETC"
chmod 700 "$S/munge"

# Fake GPU devices: character devices (same numbers as /dev/null), one per GPU.
for i in $(seq 0 $((NGPU - 1))); do
    dev=$DIR/fakegpu/nvidia$i
    [ -c "$dev" ] || { rm -f "$dev"; mknod "$dev" c 1 3 || fail "mknod $dev"; }
done

# Configs.
CPUS=$(nproc)
REALMEM=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
[ -s "$S/dbpass" ] || (umask 077 && od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$S/dbpass")
DBPASS=$(cat "$S/dbpass")
render() { # render TEMPLATE DEST MODE
    sed -e "s|@DIR@|$DIR|g" -e "s|@CPUS@|$CPUS|g" -e "s|@REALMEM@|$REALMEM|g" \
        -e "s|@NGPU@|$NGPU|g" -e "s|@LASTGPU@|$((NGPU - 1))|g" -e "s|@GPUTYPE@|$GPUTYPE|g" \
        -e "s|@DBPASS@|$DBPASS|g" "$1" >"$2.tmp"
    chmod "$3" "$2.tmp"
    mv "$2.tmp" "$2"
}
render "$HERE/slurm.conf.in" "$ETC/slurm.conf" 644
render "$HERE/gres.conf.in" "$ETC/gres.conf" 644
render "$HERE/slurmdbd.conf.in" "$ETC/slurmdbd.conf" 600
log "configs rendered into $ETC (CPUs=$CPUS RealMemory=$REALMEM GPUs=$NGPU type=$GPUTYPE)"

# munge: a private copy of the key, so munged can run as root.
if [ ! -s "$S/munge/munge.key" ]; then
    if [ -s /etc/munge/munge.key ]; then
        cp /etc/munge/munge.key "$S/munge/munge.key"
    else
        dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 600 "$S/munge/munge.key"
fi
munged --key-file="$S/munge/munge.key" --pid-file="$S/munged.pid" --log-file="$L/munged.log" \
    --seed-file="$S/munge/munged.seed" || fail "munged did not start"
wait_for "munge" sh -c 'munge -n | unmunge'
log "munged up"

# MariaDB: a private data directory, unix socket only.
MYOPTS=(--no-defaults --user=root --datadir="$S/mysql" --socket="$MYSOCK" --skip-networking
    --innodb-log-file-size=16M --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900)
if [ ! -d "$S/mysql/mysql" ]; then
    mariadb-install-db "${MYOPTS[@]}" --auth-root-authentication-method=socket --skip-test-db \
        >"$L/mariadb-install.log" 2>&1 || fail "mariadb-install-db (see $L/mariadb-install.log)"
fi
setsid mariadbd "${MYOPTS[@]}" --pid-file="$S/mariadbd.pid" --log-error="$L/mariadb.log" \
    </dev/null >/dev/null 2>&1 &
wait_for "mariadbd" mariadb --no-defaults --socket="$MYSOCK" -uroot -e 'select 1'
mariadb --no-defaults --socket="$MYSOCK" -uroot -e "
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
    ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" || fail "creating the accounting database"
wait_for "mariadbd pid file" test -s "$S/mariadbd.pid"
log "mariadbd up"

slurmdbd || fail "slurmdbd did not start"
wait_for "slurmdbd" sacctmgr -n list cluster
log "slurmdbd up"
slurmctld || fail "slurmctld did not start"
slurmd -N localhost || fail "slurmd did not start"
# shellcheck disable=SC2016 # expanded by sh -c
wait_for "node idle" sh -c '[ "$(sinfo -h -o %T)" = idle ]'
log "slurmctld + slurmd up, node idle"

sacctmgr -i -Q add account asrprune Description=asrprune Organization=asrprune >/dev/null 2>&1 || true
sacctmgr -i -Q add user root Account=asrprune DefaultAccount=asrprune >/dev/null 2>&1 || true
# shellcheck disable=SC2016
wait_for "association root/asrprune" sh -c '[ -n "$(sacctmgr -n -P show assoc user=root account=asrprune format=user)" ]'
for p in munged slurmdbd slurmctld slurmd mariadbd; do pid_alive "$S/$p.pid" || fail "$p is not running"; done
log "ready: $(sinfo -h -o '%P %T %N %G') (account asrprune, user root)"
