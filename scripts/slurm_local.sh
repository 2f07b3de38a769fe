#!/usr/bin/env bash
# Start or stop a throw-away single-node Slurm on localhost (Debian, as root),
# used by tests/test_slurm.py to run the workflow through a real scheduler.
#   usage: scripts/slurm_local.sh up | down
# `down` leaves the machine as `up` found it: it stops the daemons and removes
# what `up` added (apt packages, munge key, slurm.conf), as listed in $ROOT/added.
# Written for this project from the recipe in the team's Snakemake notes:
# config in /etc/slurm/slurm.conf (SLURM_CONF does not reach job steps), no
# accounting database (so Snakemake must poll with --slurm-status-command
# squeue), finished jobs kept visible to squeue for 10 minutes (MinJobAge).
# One `up` or `down` at a time on the machine (flock on $ROOT.lock): the cluster,
# /etc/slurm/slurm.conf and the munge key are machine-wide. A caller that uses the
# cluster across both calls (tests/test_slurm.py) holds its own lock around them.
set -euo pipefail
ROOT=${SLURM_LOCAL_ROOT:-/tmp/ctc-qpcr-slurm}
NODE=$(hostname -s)
if [ "${SLURM_LOCAL_LOCKED:-}" != "$ROOT" ]; then
  # -o: the daemons that `up` starts must not inherit (and keep) the lock.
  status=0
  SLURM_LOCAL_LOCKED=$ROOT flock -o -E 75 -w 900 "$ROOT.lock" bash "$0" "$@" || status=$?
  [ "$status" -ne 75 ] || echo "slurm_local.sh: $ROOT.lock held by another up/down for 15 min" >&2
  exit "$status"
fi

is_running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() {
  export DEBIAN_FRONTEND=noninteractive
  mkdir -p "$ROOT"
  touch "$ROOT/added"
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    local pkg missing=()
    for pkg in slurmctld slurmd slurm-client munge; do
      dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
    if [ ${#missing[@]} -gt 0 ]; then
      printf 'apt %s\n' "${missing[@]}" >> "$ROOT/added"
    fi
  fi
  if [ ! -e /etc/slurm/slurm.conf ] && ! grep -qx 'file /etc/slurm/slurm.conf' "$ROOT/added"; then
    echo "file /etc/slurm/slurm.conf" >> "$ROOT/added"
  fi
  if [ ! -s /etc/munge/munge.key ]; then
    echo "file /etc/munge/munge.key" >> "$ROOT/added"
    mungekey --create --keyfile=/etc/munge/munge.key --force
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  is_running /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
  mkdir -p "$ROOT"/state "$ROOT"/spool "$ROOT"/log "$ROOT"/run /etc/slurm
  local mem
  mem=$(( $(free -m | awk '/^Mem:/{print $2}') * 3 / 4 ))
  cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ctcqpcr
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$ROOT/state
SlurmdSpoolDir=$ROOT/spool
SlurmctldPidFile=$ROOT/run/slurmctld.pid
SlurmdPidFile=$ROOT/run/slurmd.pid
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  is_running "$ROOT/run/slurmctld.pid" || /usr/sbin/slurmctld
  is_running "$ROOT/run/slurmd.pid" || /usr/sbin/slurmd
  for _ in $(seq 60); do
    if sinfo -h -o %t 2>/dev/null | grep -qx idle; then
      return 0
    fi
    sleep 0.5
  done
  echo "slurm did not come up" >&2
  tail -n 20 "$ROOT"/log/*.log >&2 || true
  return 1
}

down() {
  local pidfile kind item packages=()
  for pidfile in "$ROOT/run/slurmd.pid" "$ROOT/run/slurmctld.pid" /run/munge/munged.pid; do
    if [ -s "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
  [ -s "$ROOT/added" ] || return 0
  while read -r kind item; do
    case "$kind" in
      apt) [ -n "$item" ] && packages+=("$item") ;;
      file) rm -f "$item" ;;
    esac
  done < "$ROOT/added"
  if [ ${#packages[@]} -gt 0 ]; then
    # A Slurm client left without a controller makes every `sacct` wait ~9 s.
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${packages[@]}" >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get autoremove -y -qq >/dev/null || true
  fi
  rm -f "$ROOT/added"
}

"${1:?usage: $0 up|down}"
