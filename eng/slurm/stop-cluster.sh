#!/usr/bin/env bash
# Tears down what start-cluster.sh brought up: jobs cancelled first (a running srun ignores SIGTERM once its
# controller is gone, and its step's processes stay), then the daemons by the pids in their pid files, then the
# namespaces and the bridge. Safe to run when nothing is up.
set -uo pipefail

STATE=${PP_SLURM_DIR:-/run/processpool-slurm}
BRIDGE=ppbr0
NODES=(ppnode1 ppnode2)
export SLURM_CONF=$STATE/slurm.conf

stop_pid() {
  local file=$1
  [ -s "$file" ] || return 0
  local pid
  pid=$(cat "$file")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

if [ -f "$SLURM_CONF" ]; then
  scancel --full --signal=KILL -u root >/dev/null 2>&1 || true
  scancel -u root >/dev/null 2>&1 || true
fi
for node in "${NODES[@]}"; do stop_pid "$STATE/slurmd-$node.pid"; done
stop_pid "$STATE/slurmctld.pid"

for node in "${NODES[@]}"; do
  # Whatever a job step left in the node's namespace.
  if [ -e "/run/netns/$node" ]; then
    for pid in $(ip netns pids "$node" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$node" 2>/dev/null || true
  fi
  ip link del "v$node" 2>/dev/null || true
done
ip link del "$BRIDGE" 2>/dev/null || true
rm -rf "$STATE"
echo "stop-cluster: down" >&2
