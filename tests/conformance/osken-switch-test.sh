#!/usr/bin/env bash
# The os-ken switch test tool (os_ken/tests/switch/tester.py, 991 OpenFlow 1.3
# cases) with ferroflowd as the TARGET and a private Open vSwitch bridge
# (netdev datapath, no DPDK) as the TESTER, set up by the shared conformance
# scripts (ovs-sandbox.sh, osken-switch-test.sh -x).
#
#   tester port 1 -> target port 1 (recv); target ports 2, 3 (send) -> tester ports 2, 3
#   ferroflowd attaches ${PFX}t1..3 in netns $OFC_NS with the pcap (or af_packet) PMD and
#   connects to the test tool's controller on tcp:127.0.0.1:$PORT in that netns.
#
# Usage: osken-switch-test.sh [-t TEST]... [-o OUTDIR] [-c SECONDS] [-r N]
#   -t  a test file or directory under os_ken/tests/switch/of13 (match,
#       action/00_OUTPUT.json, ...); repeatable; default: the whole of13 suite
#   -o  where the logs go (default $OFC_DIR/run-<date>): one log per chunk,
#       all.log (every chunk, for compare-runs.py), retryN.log and summary.txt
#   -c  the longest chunk, in estimated seconds (default 420)
#   -r  run the files with failed cases again, up to N times (default 0); a case's
#       verdict is its last run's. The tester (OVS's userspace datapath) loses a packet-in
#       now and then right after a flow change; a second run tells that from a real failure.
# The tests run in chunks (whole test files): each chunk takes /tmp/cpu.lock,
# starts ferroflowd bounded by --exit-after, runs, stops it and releases the
# lock, so no busy-polling span holds the lock for more than ~10 minutes.
# Prints "SUMMARY <name>: OK n / ERROR m" over every chunk (summarize.py), the
# failure categories, and each failed case; a failure listed in known-tester-bugs.txt
# (override with KNOWN_TESTER_BUGS=FILE) is printed and counted apart. Exits 0 when
# every case passed or failed on a listed tester bug and every chunk's log is whole (its
# own test report agrees with its cases), 1 otherwise, 2 on a setup error.
#
# Env: FERROFLOWD (binary; default target/{release,debug}/ferroflowd, the newer),
#      SHARED (the shared directory; default ../../../shared from this script),
#      PY (os-ken venv python; default /var/lib/ferroflow/python/venv/bin/python,
#      made by setup-osken.sh), OFC_DIR (/tmp/ferroflow-conformance), OFC_NS (ofc),
#      PFX (ofc), PORT (6653), OSKEN_TESTER_WAIT_TIMER (the tool's per-step
#      timeout, default here 5 s: 3 s is too short on a loaded 2-core box),
#      FF_LOG (ferroflowd's log filter, default info), FF_PMD (the DPDK driver that
#      attaches the veths: pcap, the default, or af_packet: the kernel strips VLAN
#      tags into metadata and DPDK's af_packet driver puts them back as 0x8100, so
#      802.1ad (0x88a8) tags arriving at ferroflowd become 802.1Q ones; libpcap
#      restores the TPID the frame had, and 24 cases send 802.1ad frames).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SHARED=${SHARED:-$HERE/../../../shared}
CONF_DIR=$(cd "$SHARED/conformance" && pwd)
export OFC_DIR=${OFC_DIR:-/tmp/ferroflow-conformance} OFC_NS=${OFC_NS:-ofc} PFX=${PFX:-ofc} PORT=${PORT:-6653}
export PY=${PY:-${FERROFLOW_PY_DIR:-/var/lib/ferroflow/python}/venv/bin/python}
export OSKEN_TESTER_WAIT_TIMER=${OSKEN_TESTER_WAIT_TIMER:-5}
FF_PMD=${FF_PMD:-pcap}
TESTS=() OUTDIR="" CHUNK=420 RETRY=0
while getopts "t:o:c:r:" o; do case $o in
    t) TESTS+=("$OPTARG");; o) OUTDIR=$OPTARG;; c) CHUNK=$OPTARG;; r) RETRY=$OPTARG;;
    *) sed -n "2,/^set -euo/p" "$0" | sed "\$d"; exit 2;; esac; done
[ "$(id -u)" = 0 ] || { echo "osken-switch-test: run as root (namespaces, veths, OVS)" >&2; exit 2; }

if [ -z "${FERROFLOWD:-}" ]; then
    T=${CARGO_TARGET_DIR:-$REPO/target}
    FERROFLOWD=$(ls -t "$T/release/ferroflowd" "$T/debug/ferroflowd" 2>/dev/null | head -1 || true)
fi
[ -x "${FERROFLOWD:-}" ] || { echo "osken-switch-test: no ferroflowd binary: cargo build (or set FERROFLOWD)" >&2; exit 2; }
[ -x "$PY" ] && "$PY" -c "import os_ken" 2>/dev/null || {
    echo "osken-switch-test: os-ken is not installed: run tests/conformance/setup-osken.sh" >&2; exit 2; }

# The tester: Open vSwitch from Debian. Its package would start the system
# service; a policy-rc.d guard keeps it stopped (we run a private instance).
if ! command -v ovs-vswitchd >/dev/null; then
    guard=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; guard=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openvswitch-switch >&2
    [ "$guard" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

OF13=$("$PY" -c 'import os, os_ken.tests.switch as m; print(os.path.join(os.path.dirname(m.__file__), "of13"))')
[ ${#TESTS[@]} -eq 0 ] && TESTS=(.)
OUTDIR=${OUTDIR:-$OFC_DIR/run-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR" "$OFC_DIR"
WORK=$(mktemp -d "$OFC_DIR/work.XXXXXX")
SANDBOX="$CONF_DIR/ovs-sandbox.sh"
eval "$("$SANDBOX" env)"
NSX="ip netns exec $OFC_NS"
started_ns=0 started_ovs=0 FFPID="" SPID=""

stop_ff() {
    if [ -n "$FFPID" ]; then
        kill "$FFPID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$FFPID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$FFPID" 2>/dev/null || true
        wait "$FFPID" 2>/dev/null || true
        FFPID=""
    fi
}
cleanup() {
    set +e
    [ -n "$SPID" ] && { kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; }
    stop_ff
    ovs-vsctl --timeout=10 --if-exists del-br "${PFX}tst" 2>/dev/null
    for i in 1 2 3; do $NSX ip link del "${PFX}t$i" 2>/dev/null; done
    [ "$started_ovs" = 1 ] && { "$SANDBOX" stop; rm -rf "$OFC_DIR/ovs"; }
    [ "$started_ns" = 1 ] && ip netns del "$OFC_NS" 2>/dev/null
    rm -rf "$WORK"
    rmdir "$OFC_DIR" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns list | grep -qw "^$OFC_NS" || started_ns=1
"$SANDBOX" status | grep -q "ovs-vswitchd running" || started_ovs=1
"$SANDBOX" start >"$WORK/ovs-start.log" 2>&1 || { cat "$WORK/ovs-start.log" >&2; exit 2; }

# --- chunks: whole test files, at most $CHUNK estimated seconds each ---
est() {   # estimated seconds for one test file
    local n; n=$(grep -c '"description"' "$1")
    case $1 in
        */meter/*) echo $((n * 45));;
        */group/01_*) echo $((n * 45));;
        *) echo $((n * 4 + 2));;
    esac
}
FILES=()
for t in "${TESTS[@]}"; do
    [[ "$t" = /* ]] || t=$OF13/$t
    [ -e "$t" ] || { echo "osken-switch-test: no such test: $t" >&2; exit 2; }
    while IFS= read -r f; do FILES+=("$f"); done < <(find "$t" -name '*.json' | sort)
done
make_chunks() {   # files as arguments -> chunks[]
    local f s cur="" cur_s=0
    chunks=()
    for f in "$@"; do
        s=$(est "$f")
        if [ -n "$cur" ] && [ $((cur_s + s)) -gt "$CHUNK" ]; then chunks+=("$cur"); cur="" cur_s=0; fi
        cur+="$f"$'\n'; cur_s=$((cur_s + s))
    done
    [ -n "$cur" ] && chunks+=("$cur")
}
printf '%s\n' "${FILES[@]}" >"$WORK/files.txt"

cat >"$WORK/ff.toml" <<EOF
[eal]
lcores = "0-1"
memory_mb = 256
file_prefix = "ff-osken-${PFX}"
in_memory = true
extra_args = ["--no-pci"]

[bridge]
name = "br-conf"
datapath_id = "0000000000000001"
fail_mode = "secure"
[[bridge.controllers]]
target = "tcp:127.0.0.1:${PORT}"

[datapath]
idle_sleep_us = 100
EOF
for i in 1 2 3; do
    case $FF_PMD in
        af_packet) dev="net_af_packet$((i - 1)),iface=${PFX}t$i";;
        # rx_iface_in: only what arrives, not what we send; libpcap keeps 802.1ad TPIDs
        pcap) dev="net_pcap$((i - 1)),rx_iface_in=${PFX}t$i,tx_iface=${PFX}t$i";;
        *) echo "osken-switch-test: FF_PMD must be af_packet or pcap" >&2; exit 2;;
    esac
    printf '\n[[ports]]\nname = "p%s"\ndevargs = "%s"\nofport = %s\n' "$i" "$dev" "$i" >>"$WORK/ff.toml"
done

run_chunk() {   # $1 = index, $2 = newline-separated files, $3 = log name prefix
    local idx=$1 dir=$WORK/chunk$1 name log budget
    rm -rf "$dir" "$WORK/switch-test/chunk$idx.log"
    mkdir -p "$dir"
    budget=0
    while IFS= read -r f; do
        [ -n "$f" ] || continue
        ln -s "$f" "$dir/$(echo "${f#"$OF13"/}" | tr / _)"
        budget=$((budget + $(est "$f")))
    done <<<"$2"
    name=${3:-}chunk$(printf %02d "$idx")
    log=$OUTDIR/$name.log
    exec 9>/tmp/cpu.lock
    flock 9
    # the shared runner: links, tester bridge, controller; -x waits for us
    KEEP=1 OFC_DIR=$WORK "$CONF_DIR/osken-switch-test.sh" -x -t "$dir" >"$WORK/runner.out" 2>&1 &
    SPID=$!
    for _ in $(seq 600); do
        grep -q "Controller up" "$WORK/runner.out" && break
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    if grep -q "Controller up" "$WORK/runner.out"; then
        $NSX env FERROFLOW_LOG="${FF_LOG:-info}" "$FERROFLOWD" --config "$WORK/ff.toml" \
            --exit-after $((budget * 3 + 120)) >"$OUTDIR/$name.ferroflowd.log" 2>&1 &
        FFPID=$!
    fi
    wait "$SPID" || true
    SPID=""
    stop_ff
    flock -u 9
    exec 9>&-
    cp "$WORK/switch-test/chunk$idx.log" "$log" 2>/dev/null || cp "$WORK/runner.out" "$log"
    CHUNK_LOGS+=("$log")
    grep "^SUMMARY" "$WORK/runner.out" | sed "s/^SUMMARY chunk$idx/SUMMARY $name/" | tee -a "$OUTDIR/chunks.txt" || true
}

# The verdicts over the chunk logs in run order, the last one's winning for each case
# (summarize.py: every chunk counted, each checked against its own test report, known
# tester bugs from known-tester-bugs.txt printed apart): prints the summary, writes the
# files with failed cases to $WORK/failed.txt; its status is the run's verdict.
KNOWN=${KNOWN_TESTER_BUGS:-$HERE/known-tester-bugs.txt}
summarize() {   # $1 = wall seconds, then the logs in order
    local wall=$1; shift
    "$PY" "$HERE/summarize.py" "$WORK/files.txt" "$WORK/failed.txt" "$wall" "${TESTS[*]}" \
        "$KNOWN" "$@"
}

start=$(date +%s)
CHUNK_LOGS=()
make_chunks "${FILES[@]}"
i=0
for c in "${chunks[@]}"; do
    run_chunk "$i" "$c"
    i=$((i + 1))
done
# Only the chunks' own logs (chunk*.log would take chunkNN.ferroflowd.log too).
cat "${CHUNK_LOGS[@]}" >"$OUTDIR/all.log" 2>/dev/null || true
verdict=0
summarize "$(($(date +%s) - start))" "${CHUNK_LOGS[@]}" >"$OUTDIR/summary.txt" || verdict=$?
for r in $(seq "$RETRY"); do
    [ -s "$WORK/failed.txt" ] || break
    mapfile -t again <"$WORK/failed.txt"
    echo "retry $r: ${#again[@]} files with failed cases"
    make_chunks "${again[@]}"
    first=${#CHUNK_LOGS[@]}
    for c in "${chunks[@]}"; do
        run_chunk "$i" "$c" "retry$r-"
        i=$((i + 1))
    done
    cat "${CHUNK_LOGS[@]:$first}" >"$OUTDIR/retry$r.log" 2>/dev/null || true
    verdict=0
    summarize "$(($(date +%s) - start))" "${CHUNK_LOGS[@]}" >"$OUTDIR/summary.txt" || verdict=$?
done
cat "$OUTDIR/summary.txt"
echo "logs: $OUTDIR (all.log, retryN.log: for compare-runs.py)"
exit "$verdict"
