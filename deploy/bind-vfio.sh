#!/usr/bin/env bash
# Binds one NIC to vfio-pci for ferroflowd, by interface name or PCI address.
#
#   deploy/bind-vfio.sh eth1              # dry run (the default): print the steps, change nothing
#   deploy/bind-vfio.sh 0000:3b:00.0      # the same, by PCI address
#   deploy/bind-vfio.sh eth1 --apply      # do it (as root)
#
# It refuses, in both modes, a device that is not a network device, one whose
# interface carries a default route or is up (binding it takes the interface
# away from the kernel: a host's management NIC must never be bound), and any
# device when the IOMMU is off. Undo: echo ADDR > /sys/bus/pci/drivers/vfio-pci/unbind;
# echo > /sys/bus/pci/devices/ADDR/driver_override; echo ADDR > /sys/bus/pci/drivers_probe.
# The binding does not survive a reboot: use driverctl (driverctl set-override
# ADDR vfio-pci) or run this from a unit before ferroflowd.
#
# Exit status: 0 printed (dry run), bound, or already bound to vfio-pci;
# 1 refused (the message says why); 2 usage error.
# FERROFLOW_SYSFS_ROOT and FERROFLOW_PROC_ROOT read another tree than /sys
# and /proc (the tests use a fake one).
set -euo pipefail

SYS=${FERROFLOW_SYSFS_ROOT:-/sys}
PROC=${FERROFLOW_PROC_ROOT:-/proc}

usage() { echo "usage: $0 IFACE|PCI_ADDRESS [--apply]" >&2; exit 2; }
refuse() { echo "bind-vfio: refused: $*" >&2; exit 1; }

target="" apply=0
for a in "$@"; do
    case $a in
        --apply) apply=1 ;;
        --dry-run) apply=0 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        -*) usage ;;
        *) [ -z "$target" ] || usage; target=$a ;;
    esac
done
[ -n "$target" ] || usage

# The PCI address: given, or the interface's device.
if [[ $target =~ ^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$ ]]; then
    addr=${target,,}
    [[ $addr == ????:* ]] || addr="0000:$addr"
else
    [[ $target =~ ^[A-Za-z0-9_.:-]{1,15}$ ]] || refuse "$target is neither an interface name nor a PCI address"
    [ -e "$SYS/class/net/$target" ] || refuse "no network interface $target"
    # The PCI function is the device itself or, for virtio, its parent.
    dev=$(readlink -f "$SYS/class/net/$target/device" 2>/dev/null || true)
    while [ -n "$dev" ] && [ "$dev" != / ] && ! [[ $(basename "$dev") =~ ^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$ ]]; do
        dev=$(dirname "$dev")
    done
    [ -n "$dev" ] && [ "$dev" != / ] || refuse "$target is not a PCI device (a virtual interface?)"
    addr=$(basename "$dev")
fi
devdir=$SYS/bus/pci/devices/$addr
[ -e "$devdir" ] || refuse "no PCI device $addr"

class=$(cat "$devdir/class")
[[ $class == 0x02* ]] || refuse "$addr is not a network device (class $class)"

driver=""
[ -e "$devdir/driver" ] && driver=$(basename "$(readlink -f "$devdir/driver")")
if [ "$driver" = vfio-pci ]; then
    echo "bind-vfio: $addr is already bound to vfio-pci"
    exit 0
fi

# The device's kernel interfaces: none may be up or carry a default route.
# (The interface's device is the PCI function, or below it: virtio.)
ifaces=()
real=$(readlink -f "$devdir")
for n in "$SYS"/class/net/*; do
    d=$(readlink -f "$n/device" 2>/dev/null || true)
    [ -n "$d" ] && { [ "$d" = "$real" ] || [[ $d == "$real"/* ]]; } && ifaces+=("$(basename "$n")")
done
for i in "${ifaces[@]}"; do
    # /proc/net/route: Iface Destination ...; a default route has destination 00000000.
    if awk -v i="$i" 'NR > 1 && $1 == i && $2 == "00000000" { f = 1 } END { exit !f }' "$PROC/net/route" 2>/dev/null \
        || awk -v i="$i" '$1 == "00000000000000000000000000000000" && $2 == "00" && $NF == i { f = 1 } END { exit !f }' "$PROC/net/ipv6_route" 2>/dev/null; then
        refuse "$i ($addr) carries a default route: binding it would cut this host off its network"
    fi
    flags=$(cat "$SYS/class/net/$i/flags" 2>/dev/null || echo 0)
    if (( flags & 0x1 )); then
        refuse "$i ($addr) is up: move its traffic elsewhere and take it down first (ip link set $i down)"
    fi
done

groups=$({ find "$SYS/kernel/iommu_groups" -mindepth 1 -maxdepth 1 2>/dev/null || true; } | wc -l)
noiommu=$(cat "$SYS/module/vfio/parameters/enable_unsafe_noiommu_mode" 2>/dev/null || echo N)
if [ "$groups" = 0 ] && [ "$noiommu" != Y ]; then
    refuse "the IOMMU is off (no $SYS/kernel/iommu_groups): enable VT-d/AMD-Vi and boot with intel_iommu=on iommu=pt (or amd_iommu=on)"
fi

# vfio takes a whole IOMMU group: every other device in it must be unbound or on vfio-pci too.
if [ -e "$devdir/iommu_group/devices" ]; then
    for other in "$devdir"/iommu_group/devices/*; do
        o=$(basename "$other")
        [ "$o" = "$addr" ] && continue
        od=""
        [ -e "$other/driver" ] && od=$(basename "$(readlink -f "$other/driver")")
        [ -z "$od" ] || [ "$od" = vfio-pci ] || echo "bind-vfio: note: $o shares the IOMMU group and is on $od; vfio-pci needs it unbound or on vfio-pci too" >&2
    done
fi

steps=(
    "modprobe vfio-pci"
)
[ -n "$driver" ] && steps+=("echo $addr > $SYS/bus/pci/devices/$addr/driver/unbind")
steps+=(
    "echo vfio-pci > $SYS/bus/pci/devices/$addr/driver_override"
    "echo $addr > $SYS/bus/pci/drivers_probe"
)

echo "bind-vfio: $addr (${ifaces[*]:-no interface}, driver ${driver:-none}) -> vfio-pci"
if [ "$apply" = 0 ]; then
    echo "bind-vfio: dry run (nothing changed); with --apply, as root, it would run:"
    printf '  %s\n' "${steps[@]}"
    echo "bind-vfio: then set devargs = \"$addr\" on the port and \"-a\", \"$addr\" in [eal] extra_args"
    exit 0
fi

[ "$(id -u)" = 0 ] || refuse "--apply needs root"
for s in "${steps[@]}"; do
    echo "+ $s"
    sh -c "$s"
done
now=$(basename "$(readlink -f "$devdir/driver")" 2>/dev/null || true)
[ "$now" = vfio-pci ] || refuse "$addr is on ${now:-no driver} after binding (see dmesg)"
echo "bind-vfio: $addr is bound to vfio-pci"
