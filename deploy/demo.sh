#!/usr/bin/env bash
# Sets up the host, builds Ferroflow and runs the switch on deploy/demo.toml:
# two namespace hosts (198.18.0.1 and 198.18.0.2) behind tap ports ping each
# other through it. The switch keeps running for DEMO_SECONDS (default 60) or
# until Ctrl-C, then stops cleanly and the namespaces are removed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tests/setup-host.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked --bin ferroflowd

SECONDS_TO_RUN=${DEMO_SECONDS:-60}
WD=$(mktemp -d /tmp/ferroflow-demo.XXXXXX)
PID=""
cleanup() {
    set +e
    [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    ip netns del ff-demo-a 2>/dev/null; ip netns del ff-demo-b 2>/dev/null
    echo "demo: stopped; log in $WD/ferroflowd.log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

./target/release/ferroflowd --config deploy/demo.toml --exit-after "$SECONDS_TO_RUN" \
    --stats-file "$WD/stats.json" 2>"$WD/ferroflowd.log" &
PID=$!
for _ in $(seq 100); do
    [ -e /sys/class/net/ffdemo-a ] && [ -e /sys/class/net/ffdemo-b ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$WD/ferroflowd.log"; exit 1; }
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
echo "demo: ferroflowd (pid $PID) switches between ff-demo-a (198.18.0.1) and ff-demo-b (198.18.0.2)"
ip netns exec ff-demo-a ping -c 5 -i 0.2 198.18.0.2
echo "demo: counters so far:"
python3 - "$WD/stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for p in s["ports"]:
    d, w = p["driver_stats"], p["switch_stats"]
    print(f"  port {p['name']:<4} ofport {p['ofport']}  rx {d['rx_packets']:>6}  tx {d['tx_packets']:>6}  "
          f"forwarded {w['forwarded']:>6}  flooded {w['flooded']:>4}  dropped {w['tx_dropped'] + w['drop_hairpin'] + w['drop_vlan'] + w['drop_no_output']:>4}")
PY
echo "demo: try 'ip netns exec ff-demo-b ping 198.18.0.1'; the switch stops in ${SECONDS_TO_RUN}s or on Ctrl-C"
wait "$PID" || true
PID=""
