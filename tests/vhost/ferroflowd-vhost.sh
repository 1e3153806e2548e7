#!/usr/bin/env bash
# ferroflowd as the switch of ../shared/guest/e2e-pair.sh (its -S command):
# two vhost-user ports on SOCKDIR/vhu0.sock and vhu1.sock and a two-table
# pipeline (table 0 admits by in_port, table 1 is NORMAL), loaded over
# OpenFlow once the switch is up. Runs in the foreground; SIGTERM or SIGINT
# stop ferroflowd cleanly.
#
# Usage: ferroflowd-vhost.sh SOCKDIR [client|server] [QUEUES]
# Env: FERROFLOWD (binary), FF_PREFIX (DPDK file prefix), FF_OFPORT (OpenFlow
#      listener port, 16640), FF_EXIT_AFTER (safety bound, 600 s),
#      FF_EXTRA_CONFIG (TOML appended to the config, e.g. more [[ports]]),
#      FF_STOP_SIGNAL (TERM: the default; KILL: end ferroflowd with SIGKILL,
#      to measure a restart after a crash).
set -euo pipefail
SOCKDIR=${1:?SOCKDIR}; MODE=${2:-client}; QUEUES=${3:-1}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
FERROFLOWD=${FERROFLOWD:-$HERE/target/debug/ferroflowd}
PREFIX=${FF_PREFIX:-ff-vhost-$$}; OFP=${FF_OFPORT:-16640}
client=""; [ "$MODE" = client ] && client=",client=1"
CFG=$SOCKDIR/ferroflowd.toml
cat > "$CFG" <<CFG
[eal]
lcores = "0-1"
memory_mb = 512
file_prefix = "$PREFIX"
extra_args = ["--no-pci"]

[openflow]
listen = ["ptcp:$OFP:127.0.0.1"]

[[ports]]
name = "vhu0"
devargs = "net_vhost0,iface=$SOCKDIR/vhu0.sock$client,queues=$QUEUES"
ofport = 1

[[ports]]
name = "vhu1"
devargs = "net_vhost1,iface=$SOCKDIR/vhu1.sock$client,queues=$QUEUES"
ofport = 2
${FF_EXTRA_CONFIG:-}
CFG
"$FERROFLOWD" --config "$CFG" --stats-file "$SOCKDIR/stats.json" --exit-after "${FF_EXIT_AFTER:-600}" &
PID=$!
trap 'kill -"${FF_STOP_SIGNAL:-TERM}" $PID 2>/dev/null; wait $PID' TERM INT
for _ in $(seq 100); do
    ovs-ofctl -O OpenFlow13 show "tcp:127.0.0.1:$OFP" >/dev/null 2>&1 && break
    kill -0 $PID 2>/dev/null || exit 1
    sleep 0.1
done
ovs-ofctl -O OpenFlow13 del-flows "tcp:127.0.0.1:$OFP"
printf '%s\n' \
    "table=0,priority=10,in_port=1,actions=goto_table:1" \
    "table=0,priority=10,in_port=2,actions=goto_table:1" \
    "table=0,priority=10,in_port=3,actions=goto_table:1" \
    "table=1,priority=0,actions=NORMAL" | ovs-ofctl -O OpenFlow13 add-flows "tcp:127.0.0.1:$OFP" -
echo "ferroflowd-vhost: pid $PID, two-table pipeline loaded"
wait $PID
