#!/usr/bin/env bash
# Starts a QEMU guest on a Ferroflow vhost-user port in client mode: QEMU is
# the socket server (server=on) and ferroflowd connects to it with
#   devargs = "net_vhost0,iface=/run/ferroflow/vm1.sock,client=1,queues=2"
# (deploy/hypervisor.toml, port vm1), so the guest survives restarts of the
# switch. Guest memory must be shared with the switch (share=on).
#
#   deploy/qemu-vhost-user.sh DISK.qcow2 [SOCKET] [MAC]
#
# /run/ferroflow must be writable by QEMU's user (group kvm with
# deploy/systemd/ferroflowd.service). Without KVM, drop accel=kvm and -cpu host
# and add vectors=0 to the virtio-net device (QEMU 7.2 under TCG).
set -euo pipefail
disk=${1:?usage: $0 DISK.qcow2 [SOCKET] [MAC]}
sock=${2:-/run/ferroflow/vm1.sock}
mac=${3:-52:54:00:00:00:01}
queues=2
exec qemu-system-x86_64 \
    -machine q35,accel=kvm -cpu host -smp "$queues" -m 2G \
    -object memory-backend-memfd,id=mem,size=2G,share=on -numa node,memdev=mem \
    -drive file="$disk",if=virtio \
    -chardev socket,id=vhost0,path="$sock",server=on,wait=off \
    -netdev vhost-user,id=net0,chardev=vhost0,queues="$queues" \
    -device virtio-net-pci,netdev=net0,mac="$mac",mq=on,vectors=$((2 * queues + 2)) \
    -nographic
