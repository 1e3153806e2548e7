#!/usr/bin/env bash
# Prepares a Debian 12 host (as root) for perf/run.sh: everything
# tests/setup-host.sh installs (DPDK 22.11, dpdk-testpmd, clang, ovs-ofctl,
# hugepages), plus Open vSwitch with DPDK (the reference switch) and the
# tools the benchmarks use. Idempotent.
#
# The openvswitch-switch package ships a service; a policy-rc.d guard keeps
# the install from starting it (the benchmark starts its own ovsdb-server and
# ovs-vswitchd in private directories and a private network namespace, and
# stops them by PID). An existing /usr/sbin/policy-rc.d is left alone.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "perf/setup.sh: run as root" >&2; exit 1; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Packages, hugepages (1024 x 2 MB), the hugetlbfs mount, the Rust check.
# Skip the os-ken venv of the conformance tests if it is not wanted here.
bash tests/setup-host.sh

PACKAGES=(
    openvswitch-switch-dpdk openvswitch-switch openvswitch-common   # ovs-vswitchd-dpdk, ovsdb-server, ovs-vsctl, ovs-ofctl
    dpdk dpdk-dev                  # dpdk-testpmd (ceiling, vhost guest)
    python3 iproute2 util-linux    # gen-pcap.py, netns, flock/taskset
    coreutils gawk
)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "perf/setup: installing ${missing[*]}"
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# perf/setup.sh: no service starts during this install\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=/usr/sbin/policy-rc.d
    fi
    trap '[ -n "$guard" ] && rm -f "$guard"' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    rm -f "$guard"; guard=""
fi

# Optional profilers for RESULTS.md's cause analysis; absent ones are skipped.
for p in valgrind linux-perf; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        apt-get install -y -q --no-install-recommends "$p" >/dev/null 2>&1 ||
        echo "perf/setup: $p not installed (optional)" >&2
done

VSW=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
[ -x "$VSW" ] || { echo "perf/setup: $VSW missing after install" >&2; exit 1; }
# If the distribution's service got started anyway (no guard possible), say so:
# the benchmark never touches it, but it would share the CPUs.
pgrep -x ovs-vswitchd >/dev/null 2>&1 && echo "perf/setup: warning: a system ovs-vswitchd is running" >&2
echo "perf/setup: $("$VSW" --version | head -1), DPDK $(pkg-config --modversion libdpdk), $(awk '/HugePages_Free/ {print $2}' /proc/meminfo) hugepages free"
