#!/usr/bin/env bash
# normal-bench.sh -- the N:l2 scenario of perf/run.sh: the learning switch (one
# "priority=0,actions=NORMAL" flow) with learned MACs and traffic both ways
# between two ports, not hairpins. Port 1 and port 2 are each a net_pcap vdev
# replaying one side's pcap (perf/gen-l2-pcap.py: side a's hosts send to side
# b's and back) with infinite_rx, and drop what they transmit (net_pcap without
# a tx stream). After the warm-up every MAC is learned and every frame is a
# unicast out of the other port. The rate is the sum of both ports' tx from
# OpenFlow port stats; cycles/packet come from the hook's stats, as in
# ofswitch-bench.sh. `-H testpmd` runs dpdk-testpmd --forward-mode=io on the
# same two vdevs (port 0 <-> port 1): the cost of doing nothing.
#
# Usage: normal-bench.sh -H HOOK|testpmd -w WORKDIR [-d SECS] [-W SECS] PCAP_PREFIX
#   reads PCAP_PREFIX-a.pcap and PCAP_PREFIX-b.pcap; prints one line:
#   N:l2 <mpps> <cycles_per_pkt> rx_mpps=<..> [hook stats]
# Holds $CPU_LOCK (/tmp/cpu.lock) for the whole run (WARM + DUR + ~15 s); the
# switch or testpmd is stopped by PID, and runs at most WARM + DUR + 90 s.
# EAL: --no-pci, own --file-prefix, --in-memory, --socket-limit (the hooks
# give the same to the switches).
set -euo pipefail
HOOK=""; WD=""; DUR=5; WARM=3
CPU_LOCK=${CPU_LOCK:-/tmp/cpu.lock}; MAIN_CPU=${MAIN_CPU:-0}; PMD_CPU=${PMD_CPU:-1}
while getopts "H:w:d:W:h" o; do
    case $o in
        H) HOOK=$OPTARG ;; w) WD=$OPTARG ;; d) DUR=$OPTARG ;; W) WARM=$OPTARG ;;
        *) sed -n '2,20p' "$0"; exit 0 ;;
    esac
done
shift $((OPTIND - 1))
[ -n "$HOOK" ] && [ -n "$WD" ] && [ $# = 1 ] || { sed -n '2,20p' "$0" >&2; exit 1; }
A=$1-a.pcap B=$1-b.pcap
[ -f "$A" ] && [ -f "$B" ] || { echo "normal-bench: no $A / $B (perf/gen-l2-pcap.py -o $1)" >&2; exit 1; }
mkdir -p "$WD"; WD=$(cd "$WD" && pwd)
TAG=$(printf '%s' "$WD" | cksum | cut -c1-6)
TSC_HZ=$( (dmesg 2>/dev/null || true) | awk '/tsc: Detected .* MHz/ {for (i=1;i<=NF;i++) if ($i=="MHz") {print $(i-1)*1e6; exit}}')
[ -n "$TSC_HZ" ] || TSC_HZ=$(awk '/cpu MHz/ {print $4 * 1e6; exit}' /proc/cpuinfo)
OFCTL="ovs-ofctl -O OpenFlow13"
SRC="net_pcap0,rx_pcap=$A,infinite_rx=1" SINK="net_pcap1,rx_pcap=$B,infinite_rx=1"

RUNNING=0; TP_PID=""
cleanup() {
    set +e
    [ "$RUNNING" = 1 ] && "$HOOK" stop "$WD/sw" 9>&-
    if [ -n "$TP_PID" ] && kill -0 "$TP_PID" 2>/dev/null; then kill -INT "$TP_PID"; wait "$TP_PID"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
exec 9>>"$CPU_LOCK"; flock 9

if [ "$HOOK" = testpmd ]; then
    timeout -s INT $((WARM + DUR + 10)) dpdk-testpmd -l "$MAIN_CPU,$PMD_CPU" -n 1 --no-pci --in-memory \
        --file-prefix "ffn$TAG" --socket-limit 512 --vdev "$SRC" --vdev "$SINK" \
        -- --forward-mode=io --stats-period 1 --total-num-mbufs=32768 </dev/null >"$WD/testpmd.log" 2>&1 9>&- &
    TP_PID=$!
    sleep $((WARM + DUR))
    kill -INT "$TP_PID"; wait "$TP_PID" || true; TP_PID=""
    # testpmd prints "Tx-pps:" per port every second: both ports forward
    python3 - "$WD/testpmd.log" "$WARM" "$TSC_HZ" <<'PY'
import re, sys, statistics
text = open(sys.argv[1]).read()
warm = int(sys.argv[2])
per = [[int(v) for v in re.findall(r"NIC statistics for port %d.*?Tx-pps:\s+(\d+)" % p, text, re.S)][warm:] for p in (0, 1)]
n = min(len(per[0]), len(per[1]))
tot = [per[0][i] + per[1][i] for i in range(n)] or [0]
mpps = statistics.median(tot) / 1e6
print(f"N:l2 {mpps:.3f} ~{float(sys.argv[3]) / max(mpps * 1e6, 1):.1f} rx_mpps={mpps:.3f}")
PY
    exit 0
fi

HOOK=$(cd "$(dirname "$HOOK")" && pwd)/$(basename "$HOOK")
port_stat() { $OFCTL dump-ports "$1" "$2" | grep -o "$3 pkts=[0-9]*" | head -1 | cut -d= -f2; }
now() { date +%s.%N; }
RUNNING=1
target=$(FF_EXIT_AFTER=${FF_EXIT_AFTER:-$((WARM + DUR + 90))} "$HOOK" start "$WD/sw" "$SRC" "$SINK" - 9>&-)
$OFCTL add-flow "$target" "priority=0,actions=NORMAL"
sleep "$WARM"
"$HOOK" stats-clear "$WD/sw" >/dev/null 2>&1 || true
t0=$(now); a0=$(port_stat "$target" 1 tx); b0=$(port_stat "$target" 2 tx)
r0=$(( $(port_stat "$target" 1 rx) + $(port_stat "$target" 2 rx) ))
sleep "$DUR"
t1=$(now); a1=$(port_stat "$target" 1 tx); b1=$(port_stat "$target" 2 tx)
r1=$(( $(port_stat "$target" 1 rx) + $(port_stat "$target" 2 rx) ))
st=$("$HOOK" stats "$WD/sw" 2>/dev/null || true)
"$HOOK" stop "$WD/sw" 9>&-; RUNNING=0
cpp=$(printf '%s\n' "$st" | grep -o 'cycles_per_pkt=[0-9.]*' | cut -d= -f2 || true)
awk -v t0="$t0" -v t1="$t1" -v s0=$((a0 + b0)) -v s1=$((a1 + b1)) -v r0="$r0" -v r1="$r1" \
    -v cpp="$cpp" -v hz="$TSC_HZ" -v st="$st" -v a=$((a1 - a0)) -v b=$((b1 - b0)) 'BEGIN {
    dt = t1 - t0; tx = (s1 - s0) / dt; rx = (r1 - r0) / dt
    c = (cpp != "") ? sprintf("%.1f", cpp) : sprintf("~%.1f", (tx > 0) ? hz / tx : 0)
    printf "N:l2 %.3f %s rx_mpps=%.3f tx_port1=%d tx_port2=%d %s\n", tx / 1e6, c, rx / 1e6, a, b, st }'
