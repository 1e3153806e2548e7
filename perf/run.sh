#!/usr/bin/env bash
# perf/run.sh -- ferroflowd next to OVS-DPDK, one worker core each, in one run.
#
# Builds ferroflowd (release), then for every round runs each scenario through
# OVS-DPDK (../shared/bench/hooks/ovs-dpdk.sh) and ferroflowd
# (perf/hooks/ferroflowd.sh) with ../shared/bench/ofswitch-bench.sh,
# interleaved (the order of the two alternates between rounds), plus the
# dpdk-testpmd io ceiling on the same pcaps and the 100k flow-mod timing, and
# prints a table of medians: Mpps, cycles/packet, ratio ferroflowd/OVS and the
# targets of issue 15 (DESIGN.md section 5).
#
#   net_pcap (infinite_rx, OpenFlow port 1) -> switch -> net_null (no-rx, port 2)
#   V:vhost: testpmd virtio-user txonly "guest" -> vhost-user port 3 -> port 2
#
# Usage: perf/run.sh [-r ROUNDS] [-d SECS] [-W SECS] [-w WORKDIR] [-n] [-S "SCENARIOS"]
#   -r N    rounds, medians over them (default 3)
#   -d S    measurement per run (default 5), -W S warm-up (default 3)
#   -w DIR  work dir (default mktemp -d /tmp/ff-perf-run.XXXXXX): results.txt
#           (every run), summary.md (the table), logs/
#   -n      do not build (use target/release/ferroflowd or $FERROFLOWD as is)
#   -S ...  scenarios (default: "A:p1k B1k:p1k B10k:p100k B1k:p100k-1k C10k:p100k
#           B1k:p1k-md VXe:p1k VXd:vx1k N:l2 ACL:rand10k CTc:ct10k CTe:ct10k-est
#           CTr:ct10k-synrst V:vhost flowmod:10000 flowmod:100000"); B1k:p100k-1k
#           is a control without a target: B1k's tables under 100k distinct frames
#           (over B1k's 1k instances), so that B10k:p100k against it shows what the
#           bigger tables cost apart from the 100k frames; VXe:p1k and VXd:vx1k are B1k through a VXLAN
#           port, encapsulating (out of the uplink, port 2) and decapsulating
#           (in on the uplink, port 1) (perf/tunnel-bench.sh); N:l2 is the
#           learning switch (one NORMAL flow) with learned MACs, traffic both
#           ways between ports 1 and 2 (perf/normal-bench.sh, perf/gen-l2-pcap.py:
#           500 hosts a side, 1k flows each way), with its own testpmd io
#           ceiling on the same two vdevs; ACL:rand10k is
#           perf/flows/ACL.flows (8 ACL rules on different fields and prefixes)
#           against 10k frames of random headers (perf/gen-acl-pcap.py, the
#           case where OVS's megaflow masks explode); flowmod:N times loading ~N
#           rules (pipeline B, N/2 instances) into each switch with ovs-ofctl
#           add-flows (a barrier after each flow-mod) and --bundle add-flows, and
#           into ferroflowd with one gRPC batch (ferroflowctl flows add -f)
#           (ovs-ofctl pinned to MAIN_CPU, where both control planes run).
#           CTc:ct10k, CTe:ct10k-est and CTr:ct10k-synrst are connection tracking
#           (perf/flows/CT.flows: ct to table 1, commit new connections, forward
#           established ones) over 10k connections (perf/gen-ct-pcap.py): ct(commit)
#           on one-way UDP (every packet +new), established UDP (both ways), and the
#           connection rate (a SYN and its RST+ACK per connection, every replay opens
#           each anew: new connections/s = packets/s / 2; the table prints it).
# Environment: BENCH (../shared/bench beside this repository), FERROFLOWD,
#   FERROFLOWCTL (default: beside FERROFLOWD), FF_REV (the
#   revision to print when ROOT is not a git checkout),
#   CPU_LOCK (/tmp/cpu.lock), PMD_CPU (1), MAIN_CPU (0).
#
# Safety: every busy-polling process (OVS PMD, ferroflowd worker, testpmd)
# runs only while $CPU_LOCK is held (the shared scripts' -L; the flow check and
# OVS's flow-mod step take it here; ferroflowd's flow-mod step runs its worker
# with idle_sleep_us, so nothing busy-polls), one at a time, each bounded in
# time and stopped by PID. DPDK always gets --no-pci, its own --file-prefix and a
# memory cap; only vdevs are used.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BENCH=${BENCH:-$(dirname "$0")/../../shared/bench}
BENCH=$(cd "$BENCH" && pwd) || { echo "run.sh: no shared bench at $BENCH (set BENCH)" >&2; exit 1; }
ROUNDS=3; DUR=5; WARM=3; WD=""; BUILD=1
SCENARIOS="A:p1k B1k:p1k B10k:p100k B1k:p100k-1k C10k:p100k B1k:p1k-md VXe:p1k VXd:vx1k N:l2 ACL:rand10k CTc:ct10k CTe:ct10k-est CTr:ct10k-synrst V:vhost flowmod:10000 flowmod:100000"
while getopts "r:d:W:w:nS:h" o; do
    case $o in
        r) ROUNDS=$OPTARG ;; d) DUR=$OPTARG ;; W) WARM=$OPTARG ;; w) WD=$OPTARG ;;
        n) BUILD=0 ;; S) SCENARIOS=$OPTARG ;; *) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "run.sh: run as root (DPDK, hugepages, netns)" >&2; exit 1; }
[ -n "$WD" ] || WD=$(mktemp -d /tmp/ff-perf-run.XXXXXX)
mkdir -p "$WD/logs" "$WD/pcap"; WD=$(cd "$WD" && pwd)
RES=$WD/results.txt
CPU_LOCK=${CPU_LOCK:-/tmp/cpu.lock}; export CPU_LOCK
MAIN_CPU=${MAIN_CPU:-0}; export MAIN_CPU PMD_CPU=${PMD_CPU:-1}
export FERROFLOWD=${FERROFLOWD:-$ROOT/target/release/ferroflowd}
FERROFLOWCTL=${FERROFLOWCTL:-$(dirname "$FERROFLOWD")/ferroflowctl}
FF_HOOK=$HERE/hooks/ferroflowd.sh OVS_HOOK=$BENCH/hooks/ovs-dpdk.sh
OFCTL="ovs-ofctl -O OpenFlow13"
VSW=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
T_START=$(date +%s)
log() { echo "[$(date +%T)] $*" >&2; }

for c in dpdk-testpmd ovs-ofctl ovs-vsctl ovsdb-server flock python3; do
    command -v "$c" >/dev/null || { echo "run.sh: $c missing: run perf/setup.sh" >&2; exit 1; }
done
[ -x "$VSW" ] || { echo "run.sh: $VSW missing: run perf/setup.sh" >&2; exit 1; }

if [ "$BUILD" = 1 ]; then
    log "building ferroflowd (release)"
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    (cd "$ROOT" && cargo build --release --locked -p ferroflow -p ferroflowctl --bins) >"$WD/logs/build.log" 2>&1 ||
        { tail -n 30 "$WD/logs/build.log" >&2; echo "run.sh: build failed" >&2; exit 1; }
fi
[ -x "$FERROFLOWD" ] || { echo "run.sh: no $FERROFLOWD" >&2; exit 1; }
[ -x "$FERROFLOWCTL" ] || { echo "run.sh: no $FERROFLOWCTL" >&2; exit 1; }

# ---- the lock for the steps run here (the shared scripts take their own)
LOCK_HELD=0; CUR_HOOK=""; CUR_WD=""
take_lock() { exec 8>>"$CPU_LOCK"; flock 8; LOCK_HELD=1; }
release_lock() { [ "$LOCK_HELD" = 1 ] || return 0; flock -u 8; exec 8>&-; LOCK_HELD=0; }
cleanup() {
    set +e
    [ -n "$CUR_HOOK" ] && "$CUR_HOOK" stop "$CUR_WD" 8>&-
    release_lock
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- machine and versions
{
    echo "# date $(date -Is)"
    echo "# machine $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) vCPU, $(free -g | awk '/Mem:/ {print $2}') GB, kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "# dpdk $(pkg-config --modversion libdpdk 2>/dev/null || echo ?), $("$VSW" --version | head -1)"
    rev=${FF_REV:-$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet HEAD -- . ':!perf' 2>/dev/null || echo ' +uncommitted changes')}
    echo "# ferroflow $rev, $("$FERROFLOWD" --version 2>/dev/null | head -1), $(rustc --version 2>/dev/null || true), $(file -b "$FERROFLOWD" | grep -o 'dynamically linked\|statically linked' || true)"
    echo "# rounds=$ROUNDS dur=${DUR}s warm=${WARM}s pmd_cpu=$PMD_CPU main_cpu=$MAIN_CPU scenarios: $SCENARIOS"
} | tee "$RES" >&2

# ---- traffic: one set of pcaps for all three (the shared scripts cache in WD/pcap)
for d in ovs ff tp; do mkdir -p "$WD/$d"; ln -sfn "$WD/pcap" "$WD/$d/pcap"; done
gen() { [ -f "$WD/pcap/$1.pcap" ] || python3 "$BENCH/gen-pcap.py" "${@:2}" -o "$WD/pcap/$1.pcap" >/dev/null 2>&1; }
gen p1k -f 1000; gen p100k -f 100000 -m 10000; gen p100k-1k -f 100000 -m 1000; gen p1k-md -f 1000 --metadata-every 10
[ -f "$WD/pcap/acl-rand10k.pcap" ] || python3 "$HERE/gen-acl-pcap.py" -n 10000 -o "$WD/pcap/acl-rand10k.pcap"
[ -f "$WD/pcap/vx1k.pcap" ] || python3 "$HERE/gen-vxlan-pcap.py" -i "$WD/pcap/p1k.pcap" -o "$WD/pcap/vx1k.pcap" >/dev/null
[ -f "$WD/pcap/l2-b.pcap" ] || python3 "$HERE/gen-l2-pcap.py" -H 500 -f 1000 -o "$WD/pcap/l2"
for k in commit:ct10k est:ct10k-est synrst:ct10k-synrst; do
    [ -f "$WD/pcap/${k#*:}.pcap" ] || python3 "$HERE/gen-ct-pcap.py" -k "${k%%:*}" -n 10000 -o "$WD/pcap/${k#*:}.pcap"
done

flows_file() { case $1 in ACL|CT) echo "$HERE/flows/$1.flows" ;; *) echo "$BENCH/flows/$1.flows" ;; esac; }
# What ofswitch-bench.sh is given for a scenario: ours (ACL) as flow file and pcap paths.
bench_arg() {
    case $1 in
        ACL:rand10k) echo "$(flows_file ACL):$WD/pcap/acl-rand10k.pcap" ;;
        CT?:ct*) echo "$(flows_file CT):$WD/pcap/${1#*:}.pcap" ;;
        *:p100k-1k) echo "${1%%:*}:$WD/pcap/p100k-1k.pcap" ;;
        *) echo "$1" ;;
    esac
}
nrules() { grep -cE '^[[:space:]]*[^#[:space:]]' "$1"; }

# ---- flow check: every flow file loads into ferroflowd, every rule is there
flow_check() {
    local wd=$WD/ff/check t f n got err
    take_lock
    CUR_HOOK=$FF_HOOK CUR_WD=$wd
    if ! t=$(FF_EXIT_AFTER=120 "$FF_HOOK" start "$wd" "net_pcap0,rx_pcap=$WD/pcap/p1k.pcap,infinite_rx=1" \
            "net_null0,no-rx=1" - 8>&- 2>"$WD/logs/flowcheck-start.log"); then
        echo "ferroflowd flowcheck:start FAILED $(tail -n 3 "$WD/logs/flowcheck-start.log" | tr '\n' ' ')" | tee -a "$RES"
        "$FF_HOOK" stop "$wd"; CUR_HOOK=""; release_lock; return
    fi
    for f in A B1k B10k C10k V ACL CT; do
        n=$(nrules "$(flows_file $f)")
        $OFCTL del-flows "$t"
        if err=$($OFCTL add-flows "$t" "$(flows_file $f)" 2>&1); then
            got=$($OFCTL dump-flows "$t" | grep -c 'table=' || true)
            echo "ferroflowd flowcheck:$f rules=$n installed=$got $([ "$got" = "$n" ] && echo ok || echo MISMATCH)"
        else
            echo "ferroflowd flowcheck:$f rules=$n REFUSED error=\"$(printf '%s' "$err" | tr '\n' ' ' | cut -c1-300)\""
        fi
    done | tee -a "$RES"
    "$FF_HOOK" stop "$wd"; CUR_HOOK=""
    release_lock
}

# ---- one switch run through ofswitch-bench.sh
bench_one() {  # bench_one ovs|ff SCENARIO ROUND
    local sw=$1 sc=$2 r=$3 hook name out rc lf load0 arg
    [ "$sw" = ovs ] && { hook=$OVS_HOOK; name=ovs-dpdk; } || { hook=$FF_HOOK; name=ferroflowd; }
    lf=$WD/logs/$sw-${sc//:/_}-r$r.log
    log "round $r: $name $sc"
    load0=$(cut -d' ' -f1 /proc/loadavg)   # other work on the 2 CPUs shows here
    set +e
    arg=$(bench_arg "$sc")
    out=$(FF_EXIT_AFTER=$(( WARM + DUR + 90 )) "$BENCH/ofswitch-bench.sh" -H "$hook" -w "$WD/$sw" \
        -d "$DUR" -W "$WARM" -L "$arg" 2>"$lf")
    rc=$?
    out=${out//"$arg"/$sc}
    set -e
    if [ "$rc" != 0 ] || [ -z "$out" ]; then
        echo "$name $sc FAILED rc=$rc round=$r log=$lf: $(grep -v '^ *$' "$lf" | tail -n 4 | tr '\n' ' ' | cut -c1-400)" | tee -a "$RES"
        [ "$sw" = ff ] && [ -f "$WD/ff/sw/ferroflowd.log" ] && cp "$WD/ff/sw/ferroflowd.log" "$lf.ferroflowd"
        return 0
    fi
    if [ "${sc#*:}" = vhost ] && [ -f "$WD/$sw/guest.log" ]; then
        # the guest's per-second Tx-pps while it ran at full speed: nonzero
        # samples without the last (cut short by the stop); its TX-dropped
        # share says how often the switch's vring was full
        out="$out guest_tx_mpps=$(awk '/Tx-pps:/ && $2 > 0 {print $2}' "$WD/$sw/guest.log" | sed '$d' | sort -n |
            awk '{a[NR] = $1} END {printf "%.3f", (NR ? a[int((NR + 1) / 2)] : 0) / 1e6}')"
        out="$out guest_tx_dropped=$(awk '/TX-packets:.*TX-dropped:/ {s = $2; d = $4} END {printf "%.0f%%", (s + d > 0) ? 100 * d / (s + d) : 0}' "$WD/$sw/guest.log")"
    fi
    [ "$sw" = ff ] && cp "$WD/ff/sw/ferroflowd.log" "$lf.ferroflowd" 2>/dev/null
    echo "$name $out round=$r load=$load0" | tee -a "$RES"
}

# ---- N:l2, the learning switch both ways (perf/normal-bench.sh holds the lock
# itself, like ofswitch-bench.sh -L); testpmd io on the same two vdevs after
# the switches, as the ceiling (a "testpmd io:l2" line)
normal_one() {  # normal_one ovs|ff|testpmd ROUND
    local sw=$1 r=$2 hook name out rc lf load0
    case $sw in
        ovs) hook=$OVS_HOOK; name=ovs-dpdk ;;
        ff) hook=$FF_HOOK; name=ferroflowd ;;
        *) hook=testpmd; name=testpmd ;;
    esac
    lf=$WD/logs/$sw-N_l2-r$r.log
    log "round $r: $name N:l2"
    load0=$(cut -d' ' -f1 /proc/loadavg)
    set +e
    out=$(FF_EXIT_AFTER=$(( WARM + DUR + 90 )) "$HERE/normal-bench.sh" -H "$hook" -w "$WD/$sw/n" \
        -d "$DUR" -W "$WARM" "$WD/pcap/l2" 2>"$lf")
    rc=$?
    set -e
    if [ "$rc" != 0 ] || [ -z "$out" ]; then
        echo "$name N:l2 FAILED rc=$rc round=$r log=$lf: $(grep -v '^ *$' "$lf" | tail -n 4 | tr '\n' ' ' | cut -c1-400)" | tee -a "$RES"
        return 0
    fi
    [ "$sw" = ff ] && cp "$WD/ff/n/sw/ferroflowd.log" "$lf.ferroflowd" 2>/dev/null
    [ "$sw" = testpmd ] && out=${out/#N:l2/io:l2}
    echo "$name $out round=$r load=$load0" | tee -a "$RES"
}

# ---- VXe:p1k / VXd:vx1k, B1k through a VXLAN port (perf/tunnel-bench.sh holds
# the lock itself)
tunnel_one() {  # tunnel_one ovs|ff SCENARIO ROUND
    local sw=$1 sc=$2 r=$3 hook name out rc lf load0 mode=${2%%:*} pcap=$WD/pcap/${2#*:}.pcap
    [ "$sw" = ovs ] && { hook=$OVS_HOOK; name=ovs-dpdk; } || { hook=$FF_HOOK; name=ferroflowd; }
    lf=$WD/logs/$sw-${sc//:/_}-r$r.log
    log "round $r: $name $sc"
    load0=$(cut -d' ' -f1 /proc/loadavg)
    set +e
    out=$(FF_EXIT_AFTER=$(( WARM + DUR + 90 )) "$HERE/tunnel-bench.sh" -H "$hook" -w "$WD/$sw/$mode" \
        -d "$DUR" -W "$WARM" "$mode" "$pcap" "$BENCH/flows/B1k.flows" 2>"$lf")
    rc=$?
    set -e
    if [ "$rc" != 0 ] || [ -z "$out" ]; then
        echo "$name $sc FAILED rc=$rc round=$r log=$lf: $(grep -v '^ *$' "$lf" | tail -n 4 | tr '\n' ' ' | cut -c1-400)" | tee -a "$RES"
        return 0
    fi
    [ "$sw" = ff ] && cp "$WD/ff/$mode/sw/ferroflowd.log" "$lf.ferroflowd" 2>/dev/null
    echo "$name $out round=$r load=$load0" | tee -a "$RES"
}

# ---- flow-mod timing: ~N rules through ovs-ofctl add-flows, --bundle add-flows and
# (ferroflowd) one gRPC batch, switch idle (sink only); each load is counted back
# with dump-flows and deleted before the next
flowmod_one() {  # flowmod_one ovs|ff N ROUND
    local sw=$1 n=$2 r=$3 hook name wd f t cnt t0 t1 t2 t3 t4 t5 t6 t7 dumped bdumped b_ok=1 lf
    local g_s=- gdumped=- extra=""
    [ "$sw" = ovs ] && { hook=$OVS_HOOK; name=ovs-dpdk; } || { hook=$FF_HOOK; name=ferroflowd; }
    f=$WD/flowmod-$n.flows
    [ -f "$f" ] || python3 "$BENCH/gen-flows.py" B -n $(( n / 2 )) -o "$f"
    cnt=$(nrules "$f"); wd=$WD/$sw/fm; lf=$WD/logs/$sw-flowmod$n-r$r.log
    local of="taskset -c $MAIN_CPU $OFCTL"
    log "round $r: $name flowmod:$n"
    # OVS's PMD busy-polls its sink port: under the lock (it takes seconds).
    # ferroflowd's worker sleeps when idle (idle_sleep_us), so nothing
    # busy-polls and the lock is not held: its add-flows of 100k rules takes
    # minutes and the tests must not wait that long.
    [ "$sw" = ovs ] && take_lock
    CUR_HOOK=$hook CUR_WD=$wd
    # ferroflowd: its gRPC API on a socket of its own, the store not written (the
    # timing is of the flow-mods, not of rewriting the config file with 100k flows)
    [ "$sw" = ff ] && extra=$(printf '[grpc]\nlisten = "unix:%s/api.sock"\n\n[store]\npersist = false' "$wd")
    if ! t=$(FF_EXTRA_TOML=$extra FF_EXIT_AFTER=900 FF_IDLE_SLEEP_US=200 "$hook" start "$wd" - "net_null0,no-rx=1" - 8>&- 2>"$lf"); then
        echo "$name flowmod:$n FAILED start: $(tail -n 3 "$lf" | tr '\n' ' ')" | tee -a "$RES"
        "$hook" stop "$wd" 8>&-; CUR_HOOK=""; release_lock; return 0
    fi
    $of del-flows "$t"
    t0=$(date +%s.%N)
    if ! $of add-flows "$t" "$f" 2>>"$lf"; then
        echo "$name flowmod:$n FAILED add-flows: $(tail -n 3 "$lf" | tr '\n' ' ' | cut -c1-300)" | tee -a "$RES"
        "$hook" stop "$wd" 8>&-; CUR_HOOK=""; release_lock; return 0
    fi
    t1=$(date +%s.%N)
    dumped=$($of dump-flows "$t" 2>>"$lf" | grep -c 'table=' || true); t2=$(date +%s.%N)
    $of del-flows "$t" 2>>"$lf"; t3=$(date +%s.%N)
    $of --bundle add-flows "$t" "$f" 2>>"$lf" || b_ok=0
    t4=$(date +%s.%N)
    bdumped=$($of dump-flows "$t" 2>>"$lf" | grep -c 'table=' || true)
    t5=$(date +%s.%N)
    $of del-flows "$t" 2>>"$lf"; t6=$(date +%s.%N)
    if [ "$sw" = ff ]; then
        t7=$(date +%s.%N)
        if taskset -c "$MAIN_CPU" "$FERROFLOWCTL" --server "unix:$wd/api.sock" flows add -f "$f" >/dev/null 2>>"$lf"; then
            g_s=$(awk -v a="$t7" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f", b - a}')
            gdumped=$($of dump-flows "$t" 2>>"$lf" | grep -c 'table=' || true)
        else
            g_s=refused
        fi
        $of del-flows "$t" 2>>"$lf"
    fi
    "$hook" stop "$wd" 8>&-; CUR_HOOK=""
    release_lock
    awk -v nm="$name" -v n="$n" -v c="$cnt" -v d="$dumped" -v b="$b_ok" -v bd="$bdumped" -v r="$r" -v t0="$t0" \
        -v t1="$t1" -v t2="$t2" -v t3="$t3" -v t4="$t4" -v t5="$t5" -v t6="$t6" -v g="$g_s" -v gd="$gdumped" 'BEGIN {
        printf "%s flowmod:%s add_s=%.3f add_rate=%.0f dump_s=%.3f dumped=%d del_s=%.3f bundle_add_s=%s bundle_dumped=%d del2_s=%.3f grpc_add_s=%s grpc_dumped=%s flows=%d round=%d\n",
            nm, n, t1 - t0, c / (t1 - t0), t2 - t1, d, t3 - t2, b ? sprintf("%.3f", t4 - t3) : "refused", bd, t6 - t5, g, gd, c, r }' |
        tee -a "$RES"
}

# ---- the testpmd io ceiling for the pcaps in use
# (p100k-1k is left out: its frames are p100k's, as many and as big, over fewer instances)
TRAFFICS=$(for sc in $SCENARIOS; do t=${sc#*:}; case $t in p100k-1k) ;; p*) echo "io:${t%%:*}" ;; esac; done | awk '!s[$0]++' | tr '\n' ' ')
ceiling() {  # ceiling ROUND
    [ -n "$TRAFFICS" ] || return 0
    log "round $1: testpmd io ceiling ($TRAFFICS)"
    # shellcheck disable=SC2086
    "$BENCH/testpmd-ceiling.sh" -w "$WD/tp" -d "$DUR" -W "$WARM" -L $TRAFFICS 2>>"$WD/logs/testpmd.log" |
        sed -e "s/^testpmd-\([a-z0-9]*\):\([^ ]*\)/testpmd \1:\2/" -e "s/\$/ round=$1/" | tee -a "$RES"
}

case " $SCENARIOS " in *" flowcheck "*|*" A:"*|*" B1k:"*|*" B10k:"*|*" C10k:"*|*" V:"*|*" ACL:"*|*" CT"?":"*) flow_check ;; esac
for r in $(seq "$ROUNDS"); do
    if [ $(( r % 2 )) = 1 ]; then order="ovs ff"; else order="ff ovs"; fi
    for sc in $SCENARIOS; do
        case $sc in
            flowcheck) ;;
            flowmod:*) for sw in $order; do flowmod_one "$sw" "${sc#flowmod:}" "$r"; done ;;
            N:l2) for sw in $order testpmd; do normal_one "$sw" "$r"; done ;;
            VXe:*|VXd:*) for sw in $order; do tunnel_one "$sw" "$sc" "$r"; done ;;
            *) for sw in $order; do bench_one "$sw" "$sc" "$r"; done ;;
        esac
    done
    ceiling "$r"
done
echo "# total ${SECONDS}s" >> "$RES"
python3 "$HERE/summarize.py" "$RES" | tee "$WD/summary.md"
log "done in $(( $(date +%s) - T_START )) s; raw results $RES, table $WD/summary.md, logs $WD/logs"
