#!/usr/bin/env bash
# Sets up the host, builds Ferroflow and runs the switch on deploy/demo.toml:
# two namespace hosts (198.18.0.1 and 198.18.0.2) behind tap ports ping each
# other through it. Then it shows the switch at work: the trace of the ping
# through the tables, the flows as ovs-ofctl and ferroflowctl see them, the
# port counters, and an excerpt of /metrics. The
# switch keeps running for DEMO_SECONDS (default 60; CI uses 0) or until
# Ctrl-C, then stops cleanly and the namespaces are removed. Exits non-zero if
# any step fails (no ping across, a trace that does not reach b, a tool that
# cannot reach the switch, an unclean stop).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tests/setup-host.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p ferroflow -p ferroflowctl --bins

SECONDS_TO_RUN=${DEMO_SECONDS:-60}
SERVER=unix:/run/ferroflow-demo/ferroflow.sock
OFCTL=tcp:127.0.0.1:16634
METRICS=http://127.0.0.1:19464/metrics
CTL=(./target/release/ferroflowctl --server "$SERVER")
WD=$(mktemp -d /tmp/ferroflow-demo.XXXXXX)
PID=""
STATUS=0
cleanup() {
    set +e
    if [ -n "$PID" ]; then
        kill -TERM "$PID" 2>/dev/null
        wait "$PID"
        STATUS=$?
        [ "$STATUS" = 0 ] || echo "demo: ferroflowd exited with status $STATUS" >&2
    fi
    ip netns del ff-demo-a 2>/dev/null; ip netns del ff-demo-b 2>/dev/null
    echo "demo: stopped; log in $WD/ferroflowd.log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One busy-polling process at a time on this host (tests and benchmarks take the same lock).
exec 9>/tmp/cpu.lock
flock -w 900 9 || { echo "demo: /tmp/cpu.lock is held by another switch or benchmark" >&2; exit 1; }

# --exit-after bounds the switch even if this script is killed.
./target/release/ferroflowd --config deploy/demo.toml --exit-after "$((SECONDS_TO_RUN + 120))" \
    2>"$WD/ferroflowd.log" &
PID=$!
for _ in $(seq 200); do
    [ -e /sys/class/net/ffdemo-a ] && [ -e /sys/class/net/ffdemo-b ] && [ -S /run/ferroflow-demo/ferroflow.sock ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$WD/ferroflowd.log"; PID=""; exit 1; }
    sleep 0.1
done
i=1
for h in a b; do
    ip netns del "ff-demo-$h" 2>/dev/null || true
    ip netns add "ff-demo-$h"
    ip link set "ffdemo-$h" netns "ff-demo-$h"
    ip netns exec "ff-demo-$h" sysctl -qw "net.ipv6.conf.ffdemo-$h.disable_ipv6=1"
    ip -n "ff-demo-$h" addr add "198.18.0.$i/24" dev "ffdemo-$h"
    ip -n "ff-demo-$h" link set "ffdemo-$h" up
    i=$((i + 1))
done
step() { printf '\n\033[1mdemo: %s\033[0m\n' "$*"; }
step "ferroflowd (pid $PID) switches between ff-demo-a (198.18.0.1) and ff-demo-b (198.18.0.2)"
ip netns exec ff-demo-a ping -c 5 -i 0.2 -W 2 198.18.0.2

step "the path of that ping through the live flow tables (ferroflowctl trace, like ovs-appctl ofproto/trace)"
MAC_A=$(ip netns exec ff-demo-a cat /sys/class/net/ffdemo-a/address)
MAC_B=$(ip netns exec ff-demo-b cat /sys/class/net/ffdemo-b/address)
"${CTL[@]}" trace "in_port=a,icmp,dl_src=$MAC_A,dl_dst=$MAC_B,nw_src=198.18.0.1,nw_dst=198.18.0.2" \
    | tee "$WD/trace.txt"
grep -q '^Datapath actions: output:b(2)' "$WD/trace.txt" \
    || { echo "demo: the trace does not send the ping to port b" >&2; exit 1; }

step "the flow table, as ovs-ofctl sees it (ovs-ofctl -O OpenFlow13 dump-flows $OFCTL)"
ovs-ofctl -O OpenFlow13 dump-flows "$OFCTL"
step "... and as ferroflowctl sees it (ferroflowctl flows dump)"
"${CTL[@]}" flows dump
step "port counters (ferroflowctl ports)"
"${CTL[@]}" ports
step "an excerpt of the Prometheus metrics ($METRICS)"
curl -sf "$METRICS" >"$WD/metrics.txt"
grep -E '^ferroflow_port_(rx|tx)_packets_total' "$WD/metrics.txt"
grep -c '^ferroflow_' "$WD/metrics.txt" | sed 's/^/  ... and more: /; s/$/ ferroflow_* series in all/'

step "try 'ip netns exec ff-demo-b ping 198.18.0.1'; the switch stops in ${SECONDS_TO_RUN}s or on Ctrl-C"
# net_tap signals cut sleeps short: wait on a deadline.
end=$((SECONDS + SECONDS_TO_RUN))
while [ "$SECONDS" -lt "$end" ] && kill -0 "$PID" 2>/dev/null; do sleep 1; done
kill -0 "$PID" 2>/dev/null || { echo "demo: ferroflowd stopped by itself" >&2; exit 1; }
kill -TERM "$PID"
set +e
wait "$PID"
STATUS=$?
set -e
PID=""
[ "$STATUS" = 0 ] || { echo "demo: ferroflowd exited with status $STATUS" >&2; exit 1; }
echo "demo: ferroflowd stopped cleanly"
