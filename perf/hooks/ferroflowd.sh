#!/usr/bin/env bash
# perf/hooks/ferroflowd.sh -- switch hook for ../shared/bench/ofswitch-bench.sh:
# ferroflowd with one worker lcore.  Same contract as
# ../shared/bench/hooks/ovs-dpdk.sh (all paths absolute):
#
#   HOOK start WD SRC_DEVARGS SINK_DEVARGS VHOST_SOCK
#        Writes WD/ferroflow.toml with OpenFlow ports 1 = SRC (or "-" for
#        none), 2 = SINK, 3 = net_vhost0,iface=VHOST_SOCK,client=1 (or "-"),
#        an OpenFlow listener ptcp:PORT:127.0.0.1, and starts ferroflowd in
#        the background, bounded by --exit-after $FF_EXIT_AFTER (120) s.
#        Returns once the OpenFlow listener answers and every port is in
#        dump-ports-desc; deletes the startup NORMAL flow (so the bench's
#        add-flows loads exactly the scenario); prints tcp:127.0.0.1:PORT.
#   HOOK stats-clear WD   remembers the worker's busy_cycles and packets
#   HOOK stats WD         cycles_per_pkt = delta busy_cycles / delta packets
#                         since stats-clear (from --stats-file), split into
#                         fwd_cpp (forward + flush: the switch's
#                         own work) and rx_cpp (the rx bursts, that
#                         is the source PMD's work, and the loop around them),
#                         plus the worker's busy share and the drop counters
#   HOOK stop WD          SIGTERM to the PID, SIGKILL after 10 s
#
# Environment: FERROFLOWD (default: target/release/ferroflowd next to this
#   repository), PMD_CPU (1, the worker), MAIN_CPU (0, EAL main lcore and
#   control plane), SOCKET_MEM (512, [eal] memory_mb), FF_EXIT_AFTER (120),
#   FF_STATS_INTERVAL (0.5), FF_OF_PORT (OpenFlow TCP port; default: a free
#   one), FF_IDLE_SLEEP_US ([datapath] idle_sleep_us, default 0: busy-poll),
#   FF_EXTRA_TOML (appended to the config, e.g. a [metrics] table).
# EAL always gets --no-pci, its own --file-prefix, --in-memory (the default)
# and the memory cap.
set -euo pipefail
cmd=${1:-}; WD=${2:-}
[ -n "$cmd" ] && [ -n "$WD" ] || { sed -n '2,28p' "$0" >&2; exit 1; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FERROFLOWD=${FERROFLOWD:-$HERE/../../target/release/ferroflowd}
PMD_CPU=${PMD_CPU:-1}; MAIN_CPU=${MAIN_CPU:-0}; SOCKET_MEM=${SOCKET_MEM:-512}
FF_EXIT_AFTER=${FF_EXIT_AFTER:-120}; FF_STATS_INTERVAL=${FF_STATS_INTERVAL:-0.5}
OFCTL="ovs-ofctl -O OpenFlow13"
mkdir -p "$WD"
TAG=$(printf '%s' "$WD" | cksum | cut -c1-6)
PIDF=$WD/ferroflowd.pid STATS=$WD/stats.json LOG=$WD/ferroflowd.log

alive() { [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; }
die() { echo "ferroflowd hook: $*" >&2; [ -f "$LOG" ] && tail -n 20 "$LOG" >&2; exit 1; }

# worker counters summed over workers: "busy_cycles packets total_cycles"
worker_counters() {
    python3 - "$STATS" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
w = s.get("workers", [])
# The rx queues' busy_cycles count forward + flush only (from after rx_burst returns to
# after the tx flush); the worker's count its whole loop, the rx bursts included.
q = sum(r["busy_cycles"] for x in w for r in x.get("rx_queue_stats", []))
print(sum(x["busy_cycles"] for x in w), sum(x["packets"] for x in w),
      sum(x["total_cycles"] for x in w), s.get("uptime_s", 0), q)
PY
}

case $cmd in
start)
    SRC=$3 SINK=$4 VHU=$5
    [ -x "$FERROFLOWD" ] || die "no ferroflowd at $FERROFLOWD (cargo build --release --bin ferroflowd)"
    alive && die "already running (pid $(cat "$PIDF"))"
    rm -f "$STATS" "$WD/stats0"
    # net_pcap with infinite_rx holds one mbuf per pcap packet for its whole
    # life: size the pool as the pcaps' packets (of both ports: the NORMAL
    # scenario replays a pcap on each) + 16384.
    mbufs=0
    for spec in "$SRC" "$SINK"; do
        case $spec in
            *rx_pcap=*)
                pcap=${spec#*rx_pcap=}; pcap=${pcap%%,*}
                n=$(python3 - "$pcap" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
e = "<" if b[:4] == b"\xd4\xc3\xb2\xa1" else ">"
at, n = 24, 0
while at + 16 <= len(b):
    at += 16 + struct.unpack_from(e + "I", b, at + 8)[0]; n += 1
print(n)
PY
)
                mbufs=$(( mbufs + n )) ;;
        esac
    done
    [ "$mbufs" = 0 ] || mbufs=$(( mbufs + 16384 ))
    port=${FF_OF_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
    {
        cat <<CFG
# written by perf/hooks/ferroflowd.sh
[eal]
lcores = "$MAIN_CPU,$PMD_CPU"
memory_mb = $SOCKET_MEM
file_prefix = "ffh$TAG"
extra_args = ["--no-pci"]
in_memory = true

[bridge]
fail_mode = "secure"

[datapath]
mbufs = $mbufs
idle_sleep_us = ${FF_IDLE_SLEEP_US:-0}

[openflow]
listen = ["ptcp:$port:127.0.0.1"]
CFG
        [ "$SRC" = - ] || printf '\n[[ports]]\nname = "src"\ndevargs = "%s"\nofport = 1\n' "$SRC"
        printf '\n[[ports]]\nname = "sink"\ndevargs = "%s"\nofport = 2\n' "$SINK"
        [ "$VHU" = - ] || printf '\n[[ports]]\nname = "vhu0"\ndevargs = "net_vhost0,iface=%s,client=1"\nofport = 3\n' "$VHU"
        [ -z "${FF_EXTRA_TOML:-}" ] || printf '\n%s\n' "$FF_EXTRA_TOML"
    } > "$WD/ferroflow.toml"
    # Detached from the caller's stdout (it reads the target from it); the
    # main thread and the control plane stay on MAIN_CPU, EAL pins the worker.
    taskset -c "$MAIN_CPU" "$FERROFLOWD" --config "$WD/ferroflow.toml" --stats-file "$STATS" \
        --stats-interval "$FF_STATS_INTERVAL" --exit-after "$FF_EXIT_AFTER" \
        </dev/null >"$LOG" 2>&1 &
    echo $! > "$PIDF"
    target=tcp:127.0.0.1:$port
    want=$(( 1 + $([ "$SRC" = - ] && echo 0 || echo 1) + $([ "$VHU" = - ] && echo 0 || echo 1) ))
    ok=0
    for _ in $(seq 300); do
        alive || die "ferroflowd exited during start (config $WD/ferroflow.toml)"
        if d=$($OFCTL dump-ports-desc "$target" 2>/dev/null); then
            [ "$(printf '%s\n' "$d" | grep -cE '^ +[0-9]+\(')" -ge "$want" ] && { ok=1; break; }
        fi
        sleep 0.1
    done
    [ "$ok" = 1 ] || die "no OpenFlow answer with $want ports on $target after 30 s"
    $OFCTL del-flows "$target" || die "del-flows refused on $target"
    echo "$target"
    ;;
stats-clear)
    alive || die "not running"
    # wait for a fresh stats file so the window starts now
    [ -f "$STATS" ] && t0=$(stat -c %.9Y "$STATS") || t0=""
    for _ in $(seq 40); do
        [ -f "$STATS" ] && [ "$(stat -c %.9Y "$STATS")" != "$t0" ] && break
        sleep 0.05
    done
    worker_counters > "$WD/stats0"
    ;;
stats)
    alive || die "not running"
    [ -f "$WD/stats0" ] || die "stats without stats-clear"
    t0=$(stat -c %.9Y "$STATS")
    for _ in $(seq 40); do [ "$(stat -c %.9Y "$STATS")" != "$t0" ] && break; sleep 0.05; done
    read -r b0 p0 c0 u0 q0 < "$WD/stats0"
    read -r b1 p1 c1 u1 q1 < <(worker_counters)
    drops=$(python3 - "$STATS" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
out = []
for p in s["ports"]:
    ss = p.get("switch_stats", {})
    out.append("%s_drop=%d" % (p["name"], ss.get("dropped", 0) + ss.get("tx_dropped", 0)))
print(" ".join(out), "mbufs_in_use=%d" % s.get("mbufs_in_use", 0))
PY
)
    awk -v b0="$b0" -v b1="$b1" -v p0="$p0" -v p1="$p1" -v c0="$c0" -v c1="$c1" \
        -v q0="$q0" -v q1="$q1" -v d="$drops" 'BEGIN {
        dp = p1 - p0; db = b1 - b0; dc = c1 - c0; dq = q1 - q0
        printf "cycles_per_pkt=%.1f fwd_cpp=%.1f rx_cpp=%.1f worker_busy=%.1f%% worker_pkts=%d %s\n",
            (dp > 0) ? db / dp : 0, (dp > 0) ? dq / dp : 0, (dp > 0) ? (db - dq) / dp : 0,
            (dc > 0) ? 100 * db / dc : 0, dp, d }'
    ;;
stop)
    if [ -f "$PIDF" ]; then
        p=$(cat "$PIDF")
        if kill -0 "$p" 2>/dev/null && tr '\0' ' ' < "/proc/$p/cmdline" | grep -q ferroflowd; then
            kill -TERM "$p" 2>/dev/null || true
            for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$p" 2>/dev/null && { echo "ferroflowd hook: SIGKILL $p" >&2; kill -9 "$p" 2>/dev/null || true; }
        fi
        rm -f "$PIDF"
    fi
    ;;
*) echo "usage: $0 start|stats-clear|stats|stop WD ..." >&2; exit 1 ;;
esac
