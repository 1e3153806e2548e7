#!/usr/bin/env python3
"""Wraps every frame of a pcap in VXLAN, for the decap scenario (VXd) of perf/run.sh.

Outer headers as a remote VTEP at 192.0.2.2 sends them to the switch's tunnel IP
192.0.2.1 (the addresses perf/tunnel-bench.sh gives both switches): Ethernet
02:00:00:00:ee:02 -> 02:00:00:00:ee:01 (the uplink's MAC there), IPv4 with DF and
TTL 64, UDP from a source port hashed from the inner frame (49152-65535, as VTEPs
do) to 4789, no UDP checksum, VXLAN with the I flag and VNI 5000 (--vni).

No third-party dependencies (reads and writes the libpcap format directly).
"""
import argparse
import struct
import zlib


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def ip(s):
    return bytes(int(x) for x in s.split("."))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-i", "--input", required=True, help="pcap of inner frames (gen-pcap.py)")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--vni", type=int, default=5000)
    ap.add_argument("--src-mac", default="02:00:00:00:ee:02")
    ap.add_argument("--dst-mac", default="02:00:00:00:ee:01")
    ap.add_argument("--src-ip", default="192.0.2.2")
    ap.add_argument("--dst-ip", default="192.0.2.1")
    ap.add_argument("--dst-port", type=int, default=4789)
    a = ap.parse_args()
    data = open(a.input, "rb").read()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    at, n = 24, 0
    while at + 16 <= len(data):
        ts, tus, incl, _orig = struct.unpack_from(endian + "IIII", data, at)
        inner = data[at + 16 : at + 16 + incl]
        at += 16 + incl
        sport = 49152 + (zlib.crc32(inner[:12] + inner[26:38]) % 16384)
        vxlan = struct.pack("!II", 0x08000000, a.vni << 8)
        udp_len = 8 + len(vxlan) + len(inner)
        udp = struct.pack("!HHHH", sport, a.dst_port, udp_len, 0)
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, n & 0xFFFF, 0x4000, 64, 17, 0,
                          ip(a.src_ip), ip(a.dst_ip))
        iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
        frame = mac(a.dst_mac) + mac(a.src_mac) + b"\x08\x00" + iph + udp + vxlan + inner
        out.append(struct.pack("<IIII", ts, tus, len(frame), len(frame)) + frame)
        n += 1
    open(a.output, "wb").write(b"".join(out))
    print("%d frames -> %s" % (n, a.output))


if __name__ == "__main__":
    main()
