"""Sends frames an instance must not be able to send: a foreign source MAC,
a foreign source IP, and ARP claiming another's address. Usage:
spoof.py IFACE OWN_MAC OWN_IP VICTIM_IP COUNT (run inside the instance's namespace)."""
import socket
import struct
import sys

iface, own_mac, own_ip, victim_ip, count = sys.argv[1:6]
count = int(count)
mac = lambda s: bytes(int(b, 16) for b in s.split(":"))
ip = socket.inet_aton
bcast = b"\xff" * 6
fake_mac = mac("02:66:66:66:66:66")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_udp(src, dst):
    payload = b"spoofed!" * 4
    udp = struct.pack("!HHHH", 4000, 4000, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, ip(src), ip(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + udp


def arp(sha, spa, tpa):
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, sha, ip(spa), b"\0" * 6, ip(tpa))


s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
frames = [
    # Foreign source MAC (IP correct).
    bcast + fake_mac + b"\x08\x00" + ipv4_udp(own_ip, "10.0.0.255"),
    # Foreign source IP (MAC correct).
    bcast + mac(own_mac) + b"\x08\x00" + ipv4_udp("10.0.0.99", "10.0.0.255"),
    # ARP claiming the victim's address.
    bcast + mac(own_mac) + b"\x08\x06" + arp(mac(own_mac), victim_ip, "10.0.0.254"),
]
for _ in range(count):
    for f in frames:
        s.send(f)
print("sent", count * len(frames))
