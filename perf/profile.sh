#!/usr/bin/env bash
# perf/profile.sh -- where ferroflowd's cycles go in one scenario: starts it
# through perf/hooks/ferroflowd.sh exactly as perf/run.sh does, loads the
# scenario's flows, and samples the worker thread with `perf record -e
# cpu-clock` (this VM has no hardware counters), then prints the top symbols.
#
# Usage: perf/profile.sh [-d SECS] [-n TOP] FLOWS:TRAFFIC...   e.g. A:p1k B10k:p100k V:vhost
#        perf/profile.sh [-n TOP] flowmod:N    (the control plane during add-flows
#                                               of ~N rules; the worker idles)
# Environment: BENCH, FERROFLOWD (as perf/run.sh), CPU_LOCK (/tmp/cpu.lock),
#   MAIN_CPU (0), PMD_CPU (1), PERF_CG (call graphs: "-g", or "--call-graph dwarf"
#   for callers; release builds have no frame pointers). Output and perf.data under $WD.
# Busy-polling (the worker, the vhost guest) happens only under $CPU_LOCK,
# for at most about 20 s per scenario.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH=${BENCH:-$(dirname "$0")/../../shared/bench}; BENCH=$(cd "$BENCH" && pwd)
export FERROFLOWD=${FERROFLOWD:-$HERE/../target/release/ferroflowd}
CPU_LOCK=${CPU_LOCK:-/tmp/cpu.lock}; MAIN_CPU=${MAIN_CPU:-0}
DUR=5; TOP=25
while getopts "d:n:h" o; do
    case $o in d) DUR=$OPTARG ;; n) TOP=$OPTARG ;; *) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;; esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { "$0" -h; exit 1; }
command -v perf >/dev/null || { echo "profile.sh: no perf (apt-get install linux-perf)" >&2; exit 1; }
WD=$(mktemp -d /tmp/ff-profile.XXXXXX)
HOOK=$HERE/hooks/ferroflowd.sh OFCTL="ovs-ofctl -O OpenFlow13"
cleanup() {
    set +e
    "$HOOK" stop "$WD/sw" 9>&-
    [ -f "$WD/guest.pid" ] && kill "$(cat "$WD/guest.pid")" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM
tid_of() {
    local t
    for t in /proc/"$1"/task/*; do
        if [ "$(cat "$t/comm")" = "$2" ]; then basename "$t"; return 0; fi
    done
}
report() {
    perf report -i "$1" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
        grep '%' | grep -v '^#' | awk -v n="$TOP" 'NR <= n'
}

for sc in "$@"; do
    IFS=: read -r flows traffic _ <<<"$sc"
    echo "== $sc"
    if [ "$flows" = flowmod ]; then
        f=$WD/flowmod.flows
        python3 "$BENCH/gen-flows.py" B -n $(( traffic / 2 )) -o "$f"
        t=$(FF_IDLE_SLEEP_US=200 FF_EXIT_AFTER=900 "$HOOK" start "$WD/sw" - "net_null0,no-rx=1" -)
        p=$(cat "$WD/sw/ferroflowd.pid")
        perf record -e cpu-clock -F 999 ${PERF_CG:--g} -p "$p" -o "$WD/perf-$flows.data" -- \
            taskset -c "$MAIN_CPU" $OFCTL add-flows "$t" "$f" 2>&1 | grep -v '^\[' || true
        report "$WD/perf-$flows.data"
        "$HOOK" stop "$WD/sw"
        continue
    fi
    case $traffic in
        p1k) args=(-f 1000) ;; p100k) args=(-f 100000 -m 10000) ;;
        p1k-md) args=(-f 1000 --metadata-every 10) ;; vhost) args=() ;;
        *) echo "unknown traffic $traffic" >&2; exit 1 ;;
    esac
    (
        flock 9
        src=- vhu=-
        if [ "$traffic" = vhost ]; then
            vhu=$WD/vhu0.sock
            timeout -s INT $(( DUR + 60 )) dpdk-testpmd --no-pci --in-memory --single-file-segments --file-prefix=ffprofg -m 256 \
                --socket-limit 256 --lcores "0@$MAIN_CPU,1@$MAIN_CPU" \
                --vdev "net_virtio_user0,path=$vhu,server=1,queues=1" -- --forward-mode=txonly \
                --txpkts=60 --nb-cores=1 --stats-period=1 --txd=1024 --rxd=1024 \
                --total-num-mbufs=32768 >"$WD/guest.log" 2>&1 &
            echo $! > "$WD/guest.pid"
            for _ in $(seq 100); do [ -S "$vhu" ] && break; sleep 0.1; done
        else
            pcap=$WD/$traffic.pcap
            [ -f "$pcap" ] || python3 "$BENCH/gen-pcap.py" "${args[@]}" -o "$pcap" >/dev/null 2>&1
            src="net_pcap0,rx_pcap=$pcap,infinite_rx=1"
        fi
        t=$(FF_EXIT_AFTER=$(( DUR + 60 )) "$HOOK" start "$WD/sw" "$src" "net_null0,no-rx=1" "$vhu" 9>&-)
        $OFCTL add-flows "$t" "$BENCH/flows/$flows.flows"
        sleep 2
        p=$(cat "$WD/sw/ferroflowd.pid"); w=$(tid_of "$p" rte-worker-1)
        "$HOOK" stats-clear "$WD/sw"
        perf record -e cpu-clock -F 2999 ${PERF_CG:--g} -t "$w" -o "$WD/perf-$flows.data" -- sleep "$DUR" 2>&1 | grep -v '^\[' || true
        echo "ferroflowd: $("$HOOK" stats "$WD/sw")"
        "$HOOK" stop "$WD/sw" 9>&-
        [ -f "$WD/guest.pid" ] && { kill "$(cat "$WD/guest.pid")" 2>/dev/null; rm -f "$WD/guest.pid"; }
        sleep 0.5
    ) 9>>"$CPU_LOCK"
    report "$WD/perf-$flows.data"
done
echo "perf data in $WD"
