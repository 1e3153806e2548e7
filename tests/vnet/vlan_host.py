"""A host on one VLAN of a trunk, for kernels without 802.1Q support (these
machines): answers ARP and ICMP echo for ADDRESS on VID, tagged, for SECONDS.
Usage: vlan_host.py IFACE VID ADDRESS MAC SECONDS (inside the namespace)."""
import select
import socket
import struct
import sys
import time

iface, vid, addr, mac, seconds = sys.argv[1:6]
vid, seconds = int(vid), float(seconds)
me = socket.inet_aton(addr)
my_mac = bytes(int(b, 16) for b in mac.split(":"))
SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID = 263, 8, 0x10


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((iface, 0))
s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
tag = struct.pack("!HH", 0x8100, vid)
end = time.time() + seconds
answered = 0
while time.time() < end:
    if not select.select([s], [], [], 0.2)[0]:
        continue
    data, anc, _, _ = s.recvmsg(2048, 64)
    tci = None
    for level, kind, cdata in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA:
            status, _, _, _, _, t = struct.unpack("IIIHHH", cdata[:18])
            if status & TP_STATUS_VLAN_VALID:
                tci = t
    if tci is None and data[12:14] == b"\x81\x00":
        tci = struct.unpack("!H", data[14:16])[0]
        data = data[:12] + data[16:]
    if tci is None or tci & 0xFFF != vid:
        continue
    dst, src, etype, body = data[:6], data[6:12], data[12:14], data[14:]
    if etype == b"\x08\x06" and body[6:8] == b"\x00\x01" and body[24:28] == me:
        reply = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, my_mac, me, body[8:14], body[14:18])
        s.send(src + my_mac + tag + b"\x08\x06" + reply)
        answered += 1
    elif etype == b"\x08\x00" and body[16:20] == me and body[9] == 1 and body[(body[0] & 15) * 4] == 8:
        ihl = (body[0] & 15) * 4
        icmp = bytearray(body[ihl:struct.unpack("!H", body[2:4])[0]])
        icmp[0], icmp[2], icmp[3] = 0, 0, 0
        icmp[2:4] = struct.pack("!H", csum(bytes(icmp)))
        ip = bytearray(body[:ihl])
        ip[12:16], ip[16:20] = body[16:20], body[12:16]
        ip[10:12] = b"\0\0"
        ip[10:12] = struct.pack("!H", csum(bytes(ip)))
        s.send(src + my_mac + tag + b"\x08\x00" + bytes(ip) + bytes(icmp))
        answered += 1
print("answered", answered)
