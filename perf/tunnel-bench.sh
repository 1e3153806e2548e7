#!/usr/bin/env bash
# tunnel-bench.sh -- the VXLAN scenarios of perf/run.sh, one worker core:
#   VXe (encap): B1k's traffic (1k flows, 64-byte frames) from port 1 through
#       B1k's flows, whose outputs go to VXLAN port 10 (VNI 5000, remote
#       192.0.2.2) instead of port 2; port 2 (net_null) is the uplink, so the
#       rate is the encapsulated frames leaving it (port 2 tx).
#   VXd (decap): the same frames in VXLAN (perf/gen-vxlan-pcap.py: from
#       192.0.2.2 to 192.0.2.1, VNI 5000, UDP 4789) arrive on port 1, the
#       uplink; B1k's flows with in_port=10 (the VXLAN port) instead of 1 send
#       the inner frames out of port 2.
# Both switches have 192.0.2.1/24 on the uplink and the next hop 192.0.2.2 at
# 02:00:00:00:ee:02 set statically (nothing answers ARP on net_null/net_pcap):
#   ferroflowd: [tunnels] neighbours = ["192.0.2.2 02:00:00:00:ee:02"] and a
#       [[ports]] kind = "vxlan" entry (FF_EXTRA_TOML to perf/hooks/ferroflowd.sh);
#   OVS-DPDK (userspace tunnelling): the bridge's MAC 02:00:00:00:ee:01 and
#       192.0.2.1/24 on its LOCAL port (in the hook's namespace), a type=vxlan
#       port 10, `ovs-appctl tnl/neigh/set`, `ovs/route/add`, and the two flows
#       its native tunnelling needs on the one bridge: in_port=LOCAL -> output:2
#       (encapsulated packets re-enter the bridge from LOCAL) and, for decap,
#       in_port=1 -> LOCAL (tnl_pop happens on output to LOCAL).
#
# Usage: tunnel-bench.sh -H HOOK -w WORKDIR [-d SECS] [-W SECS] VXe|VXd PCAP FLOWS
#   PCAP: the inner frames (VXe) or their VXLAN frames (VXd); FLOWS: B1k.flows.
#   Prints one line: <VXe|VXd>:<traffic> <mpps> <cycles_per_pkt> rx_mpps=.. [hook stats]
# Holds $CPU_LOCK (/tmp/cpu.lock) for the run (WARM + DUR + ~15 s); the switch is
# stopped by PID and runs at most WARM + DUR + 90 s. EAL: --no-pci, own
# --file-prefix, --in-memory, --socket-limit (the hooks give them).
set -euo pipefail
HOOK=""; WD=""; DUR=5; WARM=3
CPU_LOCK=${CPU_LOCK:-/tmp/cpu.lock}
while getopts "H:w:d:W:h" o; do
    case $o in
        H) HOOK=$OPTARG ;; w) WD=$OPTARG ;; d) DUR=$OPTARG ;; W) WARM=$OPTARG ;;
        *) sed -n '2,30p' "$0"; exit 0 ;;
    esac
done
shift $((OPTIND - 1))
[ -n "$HOOK" ] && [ -n "$WD" ] && [ $# = 3 ] || { sed -n '2,30p' "$0" >&2; exit 1; }
MODE=$1 PCAP=$2 FLOWS=$3
case $MODE in VXe|VXd) ;; *) echo "tunnel-bench: mode VXe or VXd, not $MODE" >&2; exit 1 ;; esac
[ -f "$PCAP" ] && [ -f "$FLOWS" ] || { echo "tunnel-bench: no $PCAP or $FLOWS" >&2; exit 1; }
mkdir -p "$WD"; WD=$(cd "$WD" && pwd)
HOOK=$(cd "$(dirname "$HOOK")" && pwd)/$(basename "$HOOK")
TSC_HZ=$( (dmesg 2>/dev/null || true) | awk '/tsc: Detected .* MHz/ {for (i=1;i<=NF;i++) if ($i=="MHz") {print $(i-1)*1e6; exit}}')
[ -n "$TSC_HZ" ] || TSC_HZ=$(awk '/cpu MHz/ {print $4 * 1e6; exit}' /proc/cpuinfo)
OFCTL="ovs-ofctl -O OpenFlow13"
LOCAL_IP=192.0.2.1 REMOTE_IP=192.0.2.2 LOCAL_MAC=02:00:00:00:ee:01 REMOTE_MAC=02:00:00:00:ee:02 VNI=5000
SRC="net_pcap0,rx_pcap=$PCAP,infinite_rx=1" SINK="net_null0,no-rx=1"
TRAFFIC=$(basename "$PCAP" .pcap)
if [ "$MODE" = VXe ]; then UPLINK=sink; else UPLINK=src; fi

# The scenario's flows: B1k's with the tunnel port in place of port 2 (encap) or 1 (decap).
mkdir -p "$WD/flows"
if [ "$MODE" = VXe ]; then
    sed -E 's/output:2($|,)/output:10\1/' "$FLOWS" > "$WD/flows/$MODE.flows"
else
    sed -E 's/in_port=1,/in_port=10,/' "$FLOWS" > "$WD/flows/$MODE.flows"
fi

RUNNING=0
cleanup() { set +e; [ "$RUNNING" = 1 ] && "$HOOK" stop "$WD/sw" 9>&-; }
trap cleanup EXIT
trap 'exit 130' INT TERM
exec 9>>"$CPU_LOCK"; flock 9

port_stat() { $OFCTL dump-ports "$1" "$2" | grep -o "$3 pkts=[0-9]*" | head -1 | cut -d= -f2; }
now() { date +%s.%N; }

FF_EXTRA_TOML=$(printf '[tunnels]\nneighbours = ["%s %s"]\n\n[[ports]]\nname = "vx"\nkind = "vxlan"\nofport = 10\nuplink = "%s"\nlocal_ip = "%s/24"\nremote_ip = "%s"\nkey = %d\n' \
    "$REMOTE_IP" "$REMOTE_MAC" "$UPLINK" "$LOCAL_IP" "$REMOTE_IP" "$VNI")
export FF_EXTRA_TOML
RUNNING=1
target=$(FF_EXIT_AFTER=${FF_EXIT_AFTER:-$((WARM + DUR + 90))} "$HOOK" start "$WD/sw" "$SRC" "$SINK" - 9>&-)
case $(basename "$HOOK") in
ovs-dpdk*)
    # OVS's userspace tunnelling on the hook's bridge (its run dir and namespace)
    export OVS_RUNDIR=$WD/sw/run
    TAG=$(printf '%s' "$WD/sw" | cksum | cut -c1-6)
    NS=ovsh$TAG BR=ovsh0
    appctl() { ovs-appctl -t "$OVS_RUNDIR/ovs-vswitchd.ctl" "$@"; }
    VSCTL="ovs-vsctl --timeout=30"
    $VSCTL set bridge $BR "other_config:hwaddr=\"$LOCAL_MAC\""
    $VSCTL add-port $BR vx -- set Interface vx type=vxlan ofport_request=10 \
        "options:remote_ip=$REMOTE_IP" "options:local_ip=$LOCAL_IP" "options:key=$VNI"
    ip netns exec "$NS" ip link set $BR up
    ip netns exec "$NS" ip addr add "$LOCAL_IP/24" dev $BR
    # the route is learned from the namespace's kernel table too; add it in case
    appctl ovs/route/add "$LOCAL_IP/24" $BR >/dev/null 2>&1 || true
    appctl tnl/neigh/set $BR "$REMOTE_IP" "$REMOTE_MAC" >/dev/null
    $OFCTL add-flow "$target" "table=0,priority=1,in_port=LOCAL,actions=output:2"
    [ "$MODE" = VXd ] && $OFCTL add-flow "$target" "table=0,priority=1,in_port=1,actions=LOCAL"
    {
        echo "== tnl/ports/show"; appctl tnl/ports/show || true
        echo "== tnl/neigh/show"; appctl tnl/neigh/show || true
        echo "== ovs/route/show"; appctl ovs/route/show || true
    } > "$WD/ovs-tunnel.txt" 2>&1
    ;;
esac
$OFCTL add-flows "$target" "$WD/flows/$MODE.flows"
sleep "$WARM"
"$HOOK" stats-clear "$WD/sw" >/dev/null 2>&1 || true
t0=$(now); s0=$(port_stat "$target" 2 tx); r0=$(port_stat "$target" 1 rx)
sleep "$DUR"
t1=$(now); s1=$(port_stat "$target" 2 tx); r1=$(port_stat "$target" 1 rx)
st=$("$HOOK" stats "$WD/sw" 2>/dev/null || true)
case $(basename "$HOOK") in
ovs-dpdk*) appctl dpctl/dump-flows > "$WD/ovs-dp-flows.txt" 2>&1 || true ;;
*) cp "$WD/sw/stats.json" "$WD/ff-stats.json" 2>/dev/null || true ;;
esac
"$HOOK" stop "$WD/sw" 9>&-; RUNNING=0
cpp=$(printf '%s\n' "$st" | grep -o 'cycles_per_pkt=[0-9.]*' | cut -d= -f2 || true)
awk -v n="$MODE:$TRAFFIC" -v t0="$t0" -v t1="$t1" -v s0="$s0" -v s1="$s1" -v r0="$r0" -v r1="$r1" \
    -v cpp="$cpp" -v hz="$TSC_HZ" -v st="$st" 'BEGIN {
    dt = t1 - t0; tx = (s1 - s0) / dt; rx = (r1 - r0) / dt
    c = (cpp != "") ? sprintf("%.1f", cpp) : sprintf("~%.1f", (tx > 0) ? hz / tx : 0)
    printf "%s %.3f %s rx_mpps=%.3f %s\n", n, tx / 1e6, c, rx / 1e6, st }'
