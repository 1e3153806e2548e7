#!/usr/bin/env bash
# Prepares a Debian 12 host (as root) for building and running Ferroflow:
# packages, hugepages, the hugetlbfs mount. Idempotent; safe to run again.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "setup-host.sh: run as root (it installs packages and reserves hugepages)" >&2; exit 1; }

PACKAGES=(
    dpdk dpdk-dev libdpdk-dev pkg-config    # DPDK 22.11: libraries, PMD plugins, dpdk-testpmd
    libclang-dev clang                      # bindgen
    iproute2 iputils-ping tcpdump procps util-linux python3 python3-venv kmod
    python3-scapy                           # forged IPv6 neighbor discovery in tests/vnet_profile.rs
    openvswitch-common                      # ovs-ofctl, the OpenFlow tool the tests drive ferroflowd with
    qemu-system-x86 busybox-static iperf3   # the small QEMU guests of the vhost-user tests (../shared/guest)
    ethtool                                 # copied into the multiqueue test guest (ethtool -L)
    openssl                                 # throwaway certificates for the TLS tests
    prometheus curl openssl                 # the metrics scrape test; TLS certificates for the gRPC test
    systemd                                 # systemd-analyze verify of deploy/systemd/ferroflowd.service (tests/deploy.rs)
    debootstrap                             # tests/dockerfile-chroot.sh builds the Dockerfile's stages in chroots
    valgrind                                # perf/icount.sh: instructions per packet per scenario (callgrind)
    nftables python3-scapy                  # crates/conntrack/tests/kernel_diff.py (nftables ct state verdicts); tests/tunnels.rs (Geneve frames checked by scapy)
)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-host: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || {
    echo "setup-host: no Rust toolchain: install one with rustup (https://rustup.rs), Rust 1.80 or newer" >&2
    exit 1
}

# Hugepages: 2 MB pages; Ferroflow's tests cap each DPDK process at 256-512 MB.
want=${FERROFLOW_HUGEPAGES:-1024}
have=$(awk '/HugePages_Total/ {print $2}' /proc/meminfo)
if [ "$have" -lt "$want" ]; then
    echo "$want" > /proc/sys/vm/nr_hugepages
    have=$(awk '/HugePages_Total/ {print $2}' /proc/meminfo)
    [ "$have" -ge "$want" ] || echo "setup-host: warning: only $have of $want hugepages could be reserved" >&2
fi
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
# os-ken (the OpenFlow controller the tests use), in a venv.
bash "$(dirname "${BASH_SOURCE[0]}")/conformance/setup-osken.sh"

echo "setup-host: DPDK $(pkg-config --modversion libdpdk), $(awk '/HugePages_Free/ {print $2}' /proc/meminfo) hugepages free, $(cargo --version)"
