#!/usr/bin/env bash
# perf/vhost-e2e.sh -- ferroflowd next to OVS-DPDK with two real QEMU guests,
# in one run: ../shared/guest/e2e-pair.sh (ping, iperf3 A->B, then a switch
# restart during a 10/s ping stream) with each switch in turn, ROUNDS times,
# alternating which goes first. Each e2e-pair.sh run holds /tmp/cpu.lock for
# its whole length, so nothing else busy-polls meanwhile.
#
#   ferroflowd: tests/vhost/ferroflowd-vhost.sh (two vhost-user client ports,
#               two-table pipeline: in_port admission, then NORMAL; one worker
#               on CPU 1)
#   OVS-DPDK:   ../shared/guest/ovs-vhost.sh (dpdkvhostuserclient ports on a
#               netdev bridge, NORMAL; one PMD on CPU 1)
#
# Usage: perf/vhost-e2e.sh [-r ROUNDS (3)] [-t IPERF_SECS (10)] [-w WORKDIR]
# Env: FERROFLOWD (default target/release/ferroflowd, built if missing),
#      GUEST_TOOLS (../shared/guest), GUEST_CACHE (/var/lib/ferroflow/guest),
#      FF_STOP_SIGNAL (TERM).
# Prints the RESULT lines of every run and a summary; keeps the raw output in
# WORKDIR/raw.txt.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
G=${GUEST_TOOLS:-$HERE/../shared/guest}
ROUNDS=3 IPT=10 W=/tmp/ferroflow-vhost-e2e
GUEST_CACHE=${GUEST_CACHE:-/var/lib/ferroflow/guest}
while getopts "r:t:w:h" o; do
    case $o in
        r) ROUNDS=$OPTARG;; t) IPT=$OPTARG;; w) W=$OPTARG;;
        *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2;;
    esac
done
[ -x "$G/e2e-pair.sh" ] || { echo "no $G/e2e-pair.sh (set GUEST_TOOLS)" >&2; exit 1; }
export FERROFLOWD=${FERROFLOWD:-$HERE/target/release/ferroflowd}
[ -x "$FERROFLOWD" ] || (cd "$HERE" && cargo build --release --bin ferroflowd)
mkdir -p "$W"
RAW=$W/raw.txt; : > "$RAW"
FF_CMD="$HERE/tests/vhost/ferroflowd-vhost.sh \$SOCKDIR client"
OVS_CMD="$G/ovs-vhost.sh -d \$SOCKDIR"
run() {   # run SWITCHNAME ROUND
    local name=$1 r=$2 cmd
    if [ "$name" = ferroflowd ]; then cmd=$FF_CMD; else cmd=$OVS_CMD; fi
    echo "=== $name round $r $(date -u +%FT%TZ)" | tee -a "$RAW"
    mkdir -p "$W/$name-$r"
    # the guest is built once per machine (build-guest.sh keeps a cache stamp)
    [ -e "$W/$name-$r/guest" ] || ln -s "$GUEST_CACHE" "$W/$name-$r/guest"
    # The lock is waited for without a bound; the run itself is bounded.
    FF_PREFIX=ff-e2e-$$ flock -o /tmp/cpu.lock timeout 400 "$G/e2e-pair.sh" "$W/$name-$r" \
        -m client -t "$IPT" -r -S "$cmd" 2>&1 | tee -a "$RAW" | grep -E '^RESULT|E2E' || true
}
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then run ferroflowd "$r"; run ovs-dpdk "$r"
    else run ovs-dpdk "$r"; run ferroflowd "$r"; fi
done
echo "=== summary (iperf3 A->B receiver Mbit/s; restart: longest stall s, lost replies)"
awk '/^=== (ferroflowd|ovs-dpdk) round/ {sw=$2}
     /^RESULT iperf3:/ {ip[sw]=ip[sw] " " $3}
     /^RESULT restart:/ {for(i=1;i<=NF;i++){if($i=="stall") st[sw]=st[sw] " " $(i+1); if($i=="lost") lo[sw]=lo[sw] " " $(i-1)}}
     END {for (s in ip) printf "%-10s iperf3:%s | stall:%s | lost:%s\n", s, ip[s], st[s], lo[s]}' "$RAW"
