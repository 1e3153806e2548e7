#!/usr/bin/env bash
# Instructions per packet of the worker's per-packet path (key extraction, the prefetch
# pass, the pipeline walk with counters and actions, a no-op sink) for every benchmark
# scenario, counted by callgrind over the measured pass of `crates/pipeline/benches/path.rs`
# (`--toggle-collect=ff_bench_measured*`; VXe and VXd are B1k through a VXLAN port,
# encapsulating and decapsulating). Instruction counts do not depend on the load of this
# shared machine, so a change that makes the path longer shows in the table at once.
# CTc, CTe and CTr are the connection-tracking scenarios of perf/run.sh (perf/flows/CT.flows
# over 10k connections: ct(commit) on one-way UDP, established UDP, a SYN and its RST+ACK
# opening each connection anew); the tracker's own cost is in docs/conntrack.md.
# Prints figures only: nothing here asserts on them.
#
#   bash perf/icount.sh                 # every scenario
#   bash perf/icount.sh A B1k           # some
#   ICOUNT_BEFORE=perf/icount-before.txt bash perf/icount.sh   # with a column to compare
#
# Each scenario runs for a few seconds under valgrind (the 100k-flow ones about 3 s);
# the whole table takes about a minute including the build. The DPDK rx/tx around the
# path (the PMDs, the worker's tx batching) is not in these counts: nothing here starts
# DPDK's EAL (no EAL arguments, so no --no-pci to give), only the pipeline crate's bench.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(A B1k B10k C10k N ACL B1k-md VXe VXd CTc CTe CTr)
BEFORE=${ICOUNT_BEFORE:-perf/icount-before.txt}

if ! command -v valgrind >/dev/null; then
    echo "icount: SKIPPED: valgrind is not installed (tests/setup-host.sh installs it); no instruction counts" >&2
    exit 0
fi

# Two binaries: path (every scenario but the tunnel ones) and tunnel_path (VXe, VXd),
# each with one instantiation of Pipeline::process, as the worker has.
bench_bin() {
    nice -n 10 cargo bench -p pipeline --bench "$1" --no-run --locked --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$1"
}
bin=$(bench_bin path)
tbin=$(bench_bin tunnel_path)
[ -n "$bin" ] && [ -x "$bin" ] || { echo "icount: the path bench did not build" >&2; exit 1; }
[ -n "$tbin" ] && [ -x "$tbin" ] || { echo "icount: the tunnel_path bench did not build" >&2; exit 1; }

out=$(mktemp -d /tmp/ff-icount.XXXXXX)
trap 'rm -rf "$out"' EXIT
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo "+changes" || true)
echo "icount: instructions per packet (callgrind), commit $commit$dirty, $(rustc --version)"
printf '%-8s %10s %12s %s\n' scenario instr/pkt before tables
for s in "${SCENARIOS[@]}"; do
    log="$out/$s.log"
    case $s in VX*) b=$tbin ;; *) b=$bin ;; esac
    timeout 120 valgrind --tool=callgrind --toggle-collect='ff_bench_measured*' \
        --callgrind-out-file="$out/$s.cg" "$b" "$s" >"$log" 2>&1 || {
        echo "icount: $s failed under valgrind:" >&2
        tail -5 "$log" >&2
        exit 1
    }
    collected=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log")
    pkts=$(sed -n "s/^$s: \([0-9]*\) packets measured.*/\1/p" "$log")
    tables=$(sed -n "s/^$s: .*tables \(\[.*\]\).*/\1/p" "$log")
    [ -n "$collected" ] && [ -n "$pkts" ] || { echo "icount: no count for $s" >&2; cat "$log" >&2; exit 1; }
    per=$(awk -v c="$collected" -v p="$pkts" 'BEGIN { printf "%.0f", c / p }')
    before=-
    [ -f "$BEFORE" ] && before=$(awk -v s="$s" '$1 == s { print $2 }' "$BEFORE")
    printf '%-8s %10s %12s %s\n' "$s" "$per" "${before:--}" "$tables"
done
