#!/usr/bin/env bash
# perf/batch-load.sh -- 100k flows loaded into ferroflowd as one batch, by
# `ovs-ofctl --bundle add-flows` (-k bundle, the default) or by one gRPC batch
# (`ferroflowctl flows add -f`, -k grpc), with the CPU time of each side
# (docs/flow-setup.md).
#
#   bash perf/batch-load.sh [-k bundle|grpc] [-n INSTANCES] [-l LOADS] [-w WORKDIR]
#
# Starts ferroflowd as perf/run.sh's flowmod scenario does (perf/hooks/ferroflowd.sh: one
# worker on PMD_CPU sleeping when idle, idle_sleep_us = 200; the control plane and the
# client both on MAIN_CPU; the store not written; its EAL section has --no-pci, its own
# file prefix, --in-memory and a memory cap), loads pipeline B with INSTANCES
# (50000: 100,003 flows) LOADS times (2), a del-flows between, and prints per load: the
# wall time, the server's CPU (utime + stime of ferroflowd over the load, /proc/PID/stat,
# 10 ms ticks), the client's (ovs-ofctl's or ferroflowctl's own user + sys) and the flows
# dumped back. Holds /tmp/cpu.lock for the whole run (about 10 s). FERROFLOWD and
# FERROFLOWCTL choose the binaries (default target/release/). Run as root (DPDK).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KIND=bundle N=50000 LOADS=2 WD=""
while getopts "k:n:l:w:" o; do
    case $o in k) KIND=$OPTARG ;; n) N=$OPTARG ;; l) LOADS=$OPTARG ;; w) WD=$OPTARG ;; *) exit 1 ;; esac
done
case $KIND in bundle|grpc) ;; *) echo "batch-load.sh: -k bundle or -k grpc, not '$KIND'" >&2; exit 1 ;; esac
[ -n "$WD" ] || WD=$(mktemp -d "/tmp/ff-$KIND-load.XXXXXX")
mkdir -p "$WD"; WD=$(cd "$WD" && pwd)
MAIN_CPU=${MAIN_CPU:-0}; export MAIN_CPU PMD_CPU=${PMD_CPU:-1}
BENCH=${BENCH:-$HERE/../../shared/bench}
F=$WD/flows-$N.txt
[ -f "$F" ] || python3 "$BENCH/gen-flows.py" B -n "$N" -o "$F"
OF="taskset -c $MAIN_CPU ovs-ofctl -O OpenFlow13"
if [ "$KIND" = grpc ]; then
    FERROFLOWCTL=${FERROFLOWCTL:-$HERE/../target/release/ferroflowctl}
    [ -x "$FERROFLOWCTL" ] || { echo "no ferroflowctl at $FERROFLOWCTL" >&2; exit 1; }
    client=ferroflowctl
    load() { taskset -c "$MAIN_CPU" "$FERROFLOWCTL" --server "unix:$WD/api.sock" flows add -f "$F" >/dev/null; }
else
    client=ovs-ofctl
    load() { $OF --bundle add-flows "$1" "$F" >/dev/null; }
fi
HZ=$(getconf CLK_TCK)
# "utime stime" of a process in seconds
cpu_of() { awk -v hz="$HZ" '{ sub(/^.*\) /, ""); split($0, f, " "); printf "%.2f %.2f", f[12] / hz, f[13] / hz }' "/proc/$1/stat"; }
exec 9>"${CPU_LOCK:-/tmp/cpu.lock}"
flock 9
trap '"$HERE/hooks/ferroflowd.sh" stop "$WD/ff" 9>&- || true' EXIT
extra=$(printf '[grpc]\nlisten = "unix:%s/api.sock"\n\n[store]\npersist = false' "$WD")
t=$(FF_EXTRA_TOML=$extra FF_EXIT_AFTER=120 FF_IDLE_SLEEP_US=200 \
    "$HERE/hooks/ferroflowd.sh" start "$WD/ff" - "net_null0,no-rx=1" - 9>&-)
pid=$(cat "$WD/ff/ferroflowd.pid")
for i in $(seq "$LOADS"); do
    $OF del-flows "$t"
    s0=$(cpu_of "$pid"); t0=$(date +%s.%N)
    c=$( { TIMEFORMAT='%U %S'; time load "$t" 9>&- ; } 2>&1 )
    t1=$(date +%s.%N); s1=$(cpu_of "$pid")
    d=$($OF dump-flows "$t" | grep -c 'table=' || true)
    awk -v i="$i" -v t0="$t0" -v t1="$t1" -v s0="$s0" -v s1="$s1" -v c="$c" -v d="$d" -v cl="$client" 'BEGIN {
        split(c, u, " "); split(s0, a, " "); split(s1, b, " ");
        su = b[1] - a[1]; ss = b[2] - a[2];
        printf "load %d: wall %.3f s, server CPU %.2f s (user %.2f, sys %.2f), %s CPU %.2f s (user %.2f, sys %.2f), dumped %d\n",
            i, t1 - t0, su + ss, su, ss, cl, u[1] + u[2], u[1], u[2], d }'
done
