#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for kdlib's real-Slurm tests (and for trying the
# cluster path by hand). Installs nothing: needs slurmctld, slurmd, slurm-client and munge
# (Debian packages; .ci/run installs them).
#
#   scripts/local_slurm.sh start    # write the config, start munged, slurmctld, slurmd; wait for the node
#   scripts/local_slurm.sh status   # daemons alive? node state
#   scripts/local_slurm.sh stop     # stop exactly the daemons `start` started (their pid files)
#   scripts/local_slurm.sh env      # the line to source in a client shell: export SLURM_CONF=...
#
# Everything lives under $KDLIB_SLURM_DIR (default /tmp/kdlib-slurm): config, munge key and
# socket, state, spool, logs, pid files. Ports: $KDLIB_SLURM_PORT (slurmctld) and the next one
# (slurmd), default 16817/16818, away from Slurm's 6817/6818. Clients (sbatch, squeue, and
# kdlib through submitit) find the cluster through SLURM_CONF=$KDLIB_SLURM_DIR/slurm.conf.
# No accounting (no slurmdbd): sacct fails here, kdlib follows jobs through squeue.
set -euo pipefail

DIR=${KDLIB_SLURM_DIR:-/tmp/kdlib-slurm}
PORT=${KDLIB_SLURM_PORT:-16817}
CONF=$DIR/slurm.conf
NODE=$(hostname -s)
DAEMONS=(slurmd slurmctld munged)  # stop order

pid_of() {  # the pid in $DIR/$1.pid if that process is alive
  local f=$DIR/$1.pid
  [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
}

write_conf() {
  mkdir -p "$DIR"/{state,spool,log,munge}
  chmod 700 "$DIR" "$DIR/munge"
  # this node as slurmd sees it (CPUs, sockets, cores, RealMemory), less 1 GiB for the system
  local hw mem
  hw=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //' -e 's/RealMemory=[0-9]*//')
  mem=$(( $(slurmd -C | head -1 | sed 's/.*RealMemory=\([0-9]*\).*/\1/') - 1024 ))
  cat >"$CONF" <<EOF
# written by scripts/local_slurm.sh: one node, this host, state under $DIR
ClusterName=kdlib
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
# react within seconds, not the minute-scale defaults of a big site
SchedulerParameters=sched_min_interval=100000
MessageTimeout=20
KillWait=5
MinJobAge=300
ReturnToService=2
JobRequeue=1
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 $hw RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  [ -s "$DIR/munge/munge.key" ] || mungekey --create --keyfile="$DIR/munge/munge.key" 2>/dev/null \
    || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$DIR/munge/munge.key"
}

start() {
  local t0=$SECONDS
  if pid_of slurmctld >/dev/null; then echo "already running (stop it first): $DIR"; return 0; fi
  for d in slurmctld slurmd munged; do command -v "$d" >/dev/null || {
    echo "$d not found: apt-get install slurmctld slurmd slurm-client munge" >&2; exit 1; }; done
  write_conf
  export SLURM_CONF=$CONF
  munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
    --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
  slurmctld -c -i -f "$CONF"   # -c: a clean start, no jobs from an older state folder
  slurmd -f "$CONF" -N "$NODE"
  local state=""
  for _ in $(seq 1 120); do
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.5
  done
  if [ "$state" != idle ]; then
    echo "node $NODE did not become idle (state '${state:-none}'); logs in $DIR/log" >&2
    tail -5 "$DIR"/log/*.log >&2 || true
    stop; exit 1
  fi
  echo "slurm up in $((SECONDS - t0)) s: $(sinfo -V), node $NODE idle; export SLURM_CONF=$CONF"
}

stop() {
  local pid
  if pid_of slurmctld >/dev/null; then  # first the jobs: their processes are children of slurmstepd, not ours
    export SLURM_CONF=$CONF
    scancel --full --quiet $(squeue -h -o %A 2>/dev/null) 2>/dev/null || true
    for _ in $(seq 1 50); do [ -z "$(squeue -h -t R,CG -o %A 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  for d in "${DAEMONS[@]}"; do
    pid=$(pid_of "$d") || continue
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    rm -f "$DIR/$d.pid"
    echo "stopped $d ($pid)"
  done
}

status() {
  local ok=0
  for d in munged slurmctld slurmd; do
    if pid=$(pid_of "$d"); then echo "$d: running ($pid)"; else echo "$d: not running"; ok=1; fi
  done
  [ $ok = 0 ] && SLURM_CONF=$CONF sinfo -N -o "%N %T %c %m %G"
  return $ok
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 start|stop|status|env  (state under \$KDLIB_SLURM_DIR, default /tmp/kdlib-slurm)" >&2; exit 2 ;;
esac
