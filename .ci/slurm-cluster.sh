#!/usr/bin/env bash
# Start or stop a one-node SLURM cluster on this machine, for the integration test.
#   slurm-cluster.sh start DIR   starts munged, slurmctld, slurmd (state and logs in DIR)
#   slurm-cluster.sh stop DIR    stops what start started (by pid files)
# The config goes to /etc/slurm/slurm.conf, the one place every SLURM client looks
# (the executor plugin strips SLURM_* variables, SLURM_CONF included, from job steps);
# start refuses to overwrite an existing one, and stop removes only its own.
set -euo pipefail
action=$1
dir=$(realpath -m "$2")
conf=/etc/slurm/slurm.conf

stop() {
    for name in slurmd slurmctld munged; do
        if [ -f "$dir/$name.pid" ]; then
            pid=$(cat "$dir/$name.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            rm -f "$dir/$name.pid"
        fi
    done
    if [ -f "$dir/owns-conf" ]; then
        rm -f "$conf" "$dir/owns-conf"
    fi
}

case "$action" in
start)
    if [ -e "$conf" ]; then
        echo "$conf exists: not starting a test cluster over a real one" >&2
        exit 1
    fi
    mkdir -p "$dir/state" "$dir/spool" "$dir/munge" "$dir/log" "$(dirname "$conf")"
    chown munge:munge "$dir/munge"
    touch "$dir/log/munged.log" && chown munge:munge "$dir/log/munged.log"
    chmod 755 "$dir" "$dir/log"
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    touch "$dir/owns-conf"
    cat > "$conf" <<CONF
ClusterName=mbm-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=3600
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    trap 'stop' ERR
    sudo_munge() { runuser -u munge -- "$@"; }
    sudo_munge munged --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
        --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" --force
    cp "$dir/munge/munged.pid" "$dir/munged.pid"
    slurmctld
    slurmd
    for _ in $(seq 60); do
        if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
            echo "slurm cluster up: $(sinfo -h -o '%P %D %c %T')"
            exit 0
        fi
        sleep 1
    done
    echo "slurm cluster did not come up; logs in $dir/log" >&2
    tail -n 20 "$dir"/log/*.log >&2 || true
    stop
    exit 1
    ;;
stop)
    stop
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
