#!/usr/bin/env bash
# The learning-switch path of ferroflowd next to dpdk-testpmd io forwarding, on
# the same vdevs and the same core, in one run:
#
#     net_pcap (rx_pcap=FLOWS.pcap, infinite_rx=1) -> switch -> net_null (no-rx=1)
#
# Prints one line per run: `<switch> <traffic> <mpps> <cycles_per_packet>`,
# then the medians. Mpps is the sink's tx rate over the measured window
# (after a warm-up). Only one busy-polling process runs at a time, each bounded
# by --exit-after / timeout, and only while $CPU_LOCK (default /tmp/cpu.lock,
# the lock the tests and perf/run.sh take) is held. Never probes PCI (--no-pci).
#
# Usage: perf/l2-vs-testpmd.sh [-r RUNS] [-d SECONDS] [-f FLOWS]
#   FLOWS: distinct source/destination pairs in the pcap (default 1000)
# Needs: tests/setup-host.sh done, ../shared/bench/gen-pcap.py (or GEN_PCAP=...)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=3; DUR=5; WARM=2; FLOWS=1000
while getopts "r:d:f:h" o; do
    case $o in r) RUNS=$OPTARG ;; d) DUR=$OPTARG ;; f) FLOWS=$OPTARG ;; *) sed -n '2,16p' "$0"; exit 0 ;; esac
done
GEN_PCAP=${GEN_PCAP:-../shared/bench/gen-pcap.py}
[ -f "$GEN_PCAP" ] || { echo "no pcap generator at $GEN_PCAP (set GEN_PCAP)" >&2; exit 1; }
WD=$(mktemp -d /tmp/ff-perf.XXXXXX)
PID=""
cleanup() { set +e; [ -n "$PID" ] && kill -INT "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WD"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo build --release --locked --bin ferroflowd >&2
PCAP=$WD/flows.pcap
python3 "$GEN_PCAP" -f "$FLOWS" -m "$(( FLOWS < 1000 ? FLOWS : 1000 ))" -o "$PCAP.gen" >/dev/null 2>&1
# gen-pcap.py sends instance to instance, all behind the one source port: a
# learning switch rightly drops that as hairpin. Move every destination MAC
# to 02:01:... (hosts the switch has not seen behind src), so each frame is
# looked up, missed, and sent to the sink: the full learning-switch path.
python3 - "$PCAP.gen" "$PCAP" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
at = 24
while at + 16 <= len(b):
    caplen = struct.unpack_from("<I", b, at + 8)[0]
    b[at + 16 + 1] = 0x01
    at += 16 + caplen
open(sys.argv[2], "wb").write(b)
PY
MBUFS=$(( FLOWS + 16384 ))
TSC_HZ=$(awk '/cpu MHz/ {print $4 * 1e6; exit}' /proc/cpuinfo)

run_ferroflowd() {
    cat > "$WD/ff.toml" <<CFG
[eal]
lcores = "0-1"
memory_mb = 512
file_prefix = "ff-perf"
extra_args = ["--no-pci"]
[datapath]
mbufs = $MBUFS
[[ports]]
name = "src"
devargs = "net_pcap0,rx_pcap=$PCAP,infinite_rx=1"
ofport = 1
[[ports]]
name = "sink"
devargs = "net_null0,no-rx=1"
ofport = 2
CFG
    ./target/release/ferroflowd --config "$WD/ff.toml" --stats-file "$WD/stats.json" --stats-interval 0.5 \
        --exit-after $((WARM + DUR + 3)) 2>"$WD/ff.log" &
    PID=$!
    sleep "$WARM"
    local a b
    a=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); p=[p for p in s["ports"] if p["name"]=="sink"][0]; w=s["workers"][0]; print(s["uptime_s"], p["driver_stats"]["tx_packets"], w["busy_cycles"], w["packets"])' "$WD/stats.json")
    sleep "$DUR"
    b=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); p=[p for p in s["ports"] if p["name"]=="sink"][0]; w=s["workers"][0]; print(s["uptime_s"], p["driver_stats"]["tx_packets"], w["busy_cycles"], w["packets"])' "$WD/stats.json")
    wait "$PID"; PID=""
    python3 -c '
import sys
a = list(map(float, sys.argv[1].split())); b = list(map(float, sys.argv[2].split()))
mpps = (b[1] - a[1]) / (b[0] - a[0]) / 1e6
cpp = (b[2] - a[2]) / max(b[3] - a[3], 1)
print(f"{mpps:.2f} {cpp:.1f}")' "$a" "$b"
}

run_testpmd() {
    timeout -s INT $((WARM + DUR + 10)) dpdk-testpmd -l 0-1 -n 1 --no-pci --in-memory --file-prefix ff-perf-tp \
        --socket-limit 512 --vdev "net_pcap0,rx_pcap=$PCAP,infinite_rx=1" --vdev net_null0,no-rx=1 \
        -- --forward-mode=io --stats-period 1 --total-num-mbufs=$MBUFS </dev/null >"$WD/tp.log" 2>&1 &
    PID=$!
    sleep $((WARM + DUR))
    kill -INT "$PID"; wait "$PID" || true; PID=""
    # testpmd prints "Tx-pps:" per port every second; the null port is port 1.
    python3 - "$WD/tp.log" "$WARM" "$TSC_HZ" <<'PY'
import re, sys, statistics
text = open(sys.argv[1]).read()
blocks = re.findall(r"NIC statistics for port 1.*?Tx-pps:\s+(\d+)", text, re.S)
vals = [int(v) for v in blocks[int(sys.argv[2]):]] or [0]
mpps = statistics.median(vals) / 1e6
print(f"{mpps:.2f} {float(sys.argv[3]) / max(mpps * 1e6, 1):.1f}")
PY
}

CPU_LOCK=${CPU_LOCK:-/tmp/cpu.lock}
locked() { ( flock 9; "$@" ) 9>>"$CPU_LOCK"; }   # one run (< 20 s) per hold of the lock
declare -a FF TP
for i in $(seq "$RUNS"); do
    r=$(locked run_ferroflowd); FF+=("${r%% *}"); echo "ferroflowd-l2 p$FLOWS $r"
    r=$(locked run_testpmd); TP+=("${r%% *}"); echo "testpmd-io p$FLOWS $r"
done
python3 - "${FF[*]}" "${TP[*]}" <<'PY'
import statistics, sys
ff = [float(x) for x in sys.argv[1].split()]; tp = [float(x) for x in sys.argv[2].split()]
mf, mt = statistics.median(ff), statistics.median(tp)
print(f"median: ferroflowd-l2 {mf:.2f} Mpps, testpmd-io {mt:.2f} Mpps, ratio {mf / mt:.2f}")
PY
