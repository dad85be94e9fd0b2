#!/usr/bin/env bash
# A single-node Slurm cluster on this machine for the `slurm` tests (docs/slurm.md): munged,
# slurmctld and slurmd (node `localhost`, 2 CPUs), all configured under one directory of their
# own so nothing in /etc changes. Needs Debian's slurm-wlm and munge (scripts/install-deps.sh)
# and root (the daemons run as root; no systemd needed).
#
# Usage: scripts/slurm-cluster.sh start|stop|status|env
#   SWEEP_SLURM_DIR   where config, state, logs and sockets go (default /tmp/llava-sweep-slurm)
#   SWEEP_SLURM_CPUS  CPUs of the node (default 2)
# Clients find the cluster through SLURM_CONF=$SWEEP_SLURM_DIR/slurm.conf (`env` prints the
# export line); the slurm tests look there by themselves.
# start and stop are idempotent.
set -euo pipefail

dir=${SWEEP_SLURM_DIR:-/tmp/llava-sweep-slurm}
cpus=${SWEEP_SLURM_CPUS:-2}
conf=$dir/slurm.conf
export SLURM_CONF=$conf

die() {
  echo "slurm-cluster: $*" >&2
  exit 1
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_config() {
  mkdir -p "$dir"/{munge,state,spool,log,jobcomp}
  chmod 700 "$dir/munge"
  if [ ! -f "$dir/munge/munge.key" ]; then
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  fi
  chmod 400 "$dir/munge/munge.key"
  # RealMemory leaves headroom; DefMemPerCPU keeps jobs without --mem schedulable.
  local mem_mb
  mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
  cat >"$conf" <<EOF
ClusterName=llava-sweep
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=6917
SlurmdPort=6918
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp/jobcomp.log
AccountingStorageType=accounting_storage/none
# Final states stay visible to scontrol for 5 minutes after a job ends.
MinJobAge=300
# A job past its time limit gets SIGTERM, then SIGKILL this many seconds later.
KillWait=10
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=1024
EOF
}

start() {
  [ "$(id -u)" -eq 0 ] || die "run as root (the daemons run as root here)"
  command -v slurmctld >/dev/null || die "slurmctld not found: run scripts/install-deps.sh"
  command -v munged >/dev/null || die "munged not found: run scripts/install-deps.sh"
  write_config
  if ! pid_alive "$dir/munge/munged.pid"; then
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
      --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
      --seed-file="$dir/munge/munge.seed"
  fi
  if ! pid_alive "$dir/slurmctld.pid"; then slurmctld -f "$conf"; fi
  if ! pid_alive "$dir/slurmd.pid"; then slurmd -f "$conf" -N localhost; fi
  # Ready when the node takes jobs.
  for _ in $(seq 1 60); do
    state=$(sinfo -h -n localhost -o %t 2>/dev/null || true)
    case "$state" in
      idle* | mix* | alloc*)
        echo "slurm-cluster: up (node localhost $state, $cpus CPUs); export SLURM_CONF=$conf"
        return 0
        ;;
    esac
    if [ "$state" = "down" ] || [ "$state" = "drain" ]; then
      scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
    fi
    sleep 0.5
  done
  die "the node did not come up; see $dir/log/"
}

stop_daemon() {
  local pidfile=$1
  if pid_alive "$pidfile"; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
}

stop() {
  [ -f "$conf" ] && scancel --quiet --user="$(id -un)" >/dev/null 2>&1 || true
  stop_daemon "$dir/slurmd.pid"
  stop_daemon "$dir/slurmctld.pid"
  stop_daemon "$dir/munge/munged.pid"
  echo "slurm-cluster: stopped"
}

status() {
  local up=0
  for d in munge/munged slurmctld slurmd; do
    if pid_alive "$dir/$d.pid"; then echo "$(basename $d): running"; else
      echo "$(basename $d): stopped"
      up=1
    fi
  done
  [ $up -eq 0 ] && sinfo -N -o "%N %t %c"
  return $up
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$conf" ;;
  *) die "usage: $0 start|stop|status|env" ;;
esac
