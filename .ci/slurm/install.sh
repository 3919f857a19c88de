#!/usr/bin/env bash
# Install a single-node SLURM 22.05 cluster's packages (Debian 12), idempotently.
# Usage: sudo .ci/slurm/install.sh        (must run as root; apt starts no services here)
set -euo pipefail

PKGS=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: must be run as root (it calls apt-get install)" >&2
    exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install.sh: already installed: ${PKGS[*]}"
    exit 0
fi

echo "install.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# An apt list is needed once; refresh only if no candidate is known for the first missing package.
if ! apt-cache policy "${missing[0]}" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get update -q
fi
if ! apt-get install -y -q --no-install-recommends "${PKGS[@]}"; then
    echo "install.sh: apt-get install failed; refreshing the package lists and trying again" >&2
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${PKGS[@]}"
fi
echo "install.sh: done"
