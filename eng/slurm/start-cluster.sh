#!/usr/bin/env bash
# Brings up a local Slurm cluster for the Slurm tests: one controller and two compute nodes that the pool sees at
# two different addresses and hostnames, all on this machine.
#
#   root namespace:  munged, slurmctld on the bridge address (10.213.77.1 by default), the host of the tests
#   netns ppnode1:   slurmd -N ppnode1 at 10.213.77.11, hostname ppnode1 (its own UTS namespace)
#   netns ppnode2:   slurmd -N ppnode2 at 10.213.77.12, hostname ppnode2
#
# Each node reaches the controller (and a pool's TCP listener) through a veth pair into the bridge; the filesystem
# is shared, so a node runs the app's own build. Needs root and Debian's slurm-wlm and munge (installed here if
# missing, with apt-get). Idempotent: a cluster that is already up is left as it is. Prints the SLURM_CONF line
# to export; `eng/slurm/stop-cluster.sh` tears it all down.
#
# Why nsenter rather than `ip netns exec`: the latter remounts /sys, and slurmd 22.05 then fails with "No filesystem
# mounted on /sys/fs/cgroup". slurmd daemonizes before it writes its pid file: we wait for the file to be non-empty.
set -euo pipefail

STATE=${PP_SLURM_DIR:-/run/processpool-slurm}
NET=${PP_SLURM_NET:-10.213.77}
BRIDGE=ppbr0
NODES=(ppnode1 ppnode2)
CONF=$STATE/slurm.conf

log() { echo "start-cluster: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "needs root (it creates network namespaces and runs the Slurm daemons)"; exit 2
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v srun >/dev/null; then
  log "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq slurm-wlm munge >/dev/null
fi

export SLURM_CONF=$CONF
if [ -s "$STATE/ready" ] && sinfo -h -o '%T' 2>/dev/null | grep -q idle; then
  log "already up"
  echo "export SLURM_CONF=$CONF"
  exit 0
fi

mkdir -p "$STATE"
chmod 755 "$STATE"

# --- network: a bridge in the root namespace, one namespace per node with a veth pair into it -----------------
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
  ip addr add "$NET.1/24" dev "$BRIDGE"
fi
ip link set "$BRIDGE" up
i=10
for node in "${NODES[@]}"; do
  i=$((i + 1))
  if [ ! -e "/run/netns/$node" ]; then
    ip netns add "$node"
  fi
  if ! ip link show "v$node" >/dev/null 2>&1; then
    ip link add "v$node" type veth peer name eth0 netns "$node"
    ip link set "v$node" master "$BRIDGE"
    ip -n "$node" addr add "$NET.$i/24" dev eth0
  fi
  ip link set "v$node" up
  ip -n "$node" link set lo up
  ip -n "$node" link set eth0 up
done

# --- munge: one daemon, its socket on the shared filesystem -----------------------------------------------------
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge/munge.key 2>/dev/null || true
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
if ! munge -n >/dev/null 2>&1; then
  runuser -u munge -- munged
  for _ in $(seq 1 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n >/dev/null || { log "munged did not start"; exit 1; }
fi

# --- slurm.conf ----------------------------------------------------------------------------------------------------
ctl_host=$(hostname -s)
cpus=$(nproc)
{
  echo "ClusterName=processpool"
  echo "SlurmctldHost=$ctl_host($NET.1)"
  echo "SlurmUser=root"
  echo "SlurmctldPort=6817"
  echo "SlurmdPort=6818"
  echo "AuthType=auth/munge"
  echo "StateSaveLocation=$STATE/ctld"
  echo "SlurmdSpoolDir=$STATE/spool/%n"
  echo "SlurmctldPidFile=$STATE/slurmctld.pid"
  echo "SlurmdPidFile=$STATE/slurmd-%n.pid"
  echo "SlurmctldLogFile=$STATE/slurmctld.log"
  echo "SlurmdLogFile=$STATE/slurmd-%n.log"
  echo "ProctrackType=proctrack/linuxproc"
  echo "TaskPlugin=task/none"
  echo "AccountingStorageType=accounting_storage/none"
  echo "JobAcctGatherType=jobacct_gather/none"
  echo "JobCompType=jobcomp/none"
  echo "SelectType=select/cons_tres"
  echo "SelectTypeParameters=CR_Core"
  echo "ReturnToService=2"
  echo "SlurmdTimeout=10"
  echo "InactiveLimit=0"
  echo "KillWait=2"
  echo "MpiDefault=none"
  echo "SchedulerType=sched/backfill"
  i=10
  for node in "${NODES[@]}"; do
    i=$((i + 1))
    echo "NodeName=$node NodeAddr=$NET.$i NodeHostname=$node CPUs=$cpus State=UNKNOWN"
  done
  echo "PartitionName=debug Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES MaxTime=INFINITE State=UP"
} > "$CONF"
mkdir -p "$STATE/ctld" "$STATE/spool"
for node in "${NODES[@]}"; do mkdir -p "$STATE/spool/$node"; done

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_pidfile() {
  for _ in $(seq 1 100); do [ -s "$1" ] && return 0; sleep 0.05; done
  log "no pid in $1"; return 1
}

if ! alive "$STATE/slurmctld.pid"; then
  rm -f "$STATE/slurmctld.pid"
  slurmctld -i
  wait_pidfile "$STATE/slurmctld.pid"
fi

for node in "${NODES[@]}"; do
  pidfile="$STATE/slurmd-$node.pid"
  if ! alive "$pidfile"; then
    rm -f "$pidfile"
    nsenter --net="/run/netns/$node" unshare --uts sh -c "hostname $node && exec slurmd -N $node"
    wait_pidfile "$pidfile"
  fi
done

# --- wait until every node is idle -----------------------------------------------------------------------------------
for _ in $(seq 1 200); do
  idle=$(sinfo -h -N -o '%N %T' 2>/dev/null | grep -c ' idle$' || true)
  [ "$idle" -eq "${#NODES[@]}" ] && break
  sleep 0.1
done
if [ "$idle" -ne "${#NODES[@]}" ]; then
  log "nodes not idle after 20 s:"; sinfo -N >&2 || true; tail -n 20 "$STATE"/*.log >&2 || true; exit 1
fi
date +%s > "$STATE/ready"
log "up: ${NODES[*]} idle ($CONF)"
echo "export SLURM_CONF=$CONF"
