#!/usr/bin/env python3
"""Traffic both ways for the NORMAL scenario (N:l2): two pcaps, one per side of the
learning switch. Side a's hosts (MACs 02:00:00:0a:xx:xx) sit behind OpenFlow port 1 and
send to side b's hosts (02:00:00:0b:xx:xx) behind port 2, and the other way round; once
both sides have sent a frame every destination is learned, so after the warm-up every
frame is a unicast to the other port (no hairpin, no flood). Frame k of a side goes from
its host k % H to the other side's host (7k + 3) % H, UDP source port 1024 + k // H, 60
bytes. Deterministic; no dependencies.

  gen-l2-pcap.py [-H 500] [-f 1000] -o PREFIX     # writes PREFIX-a.pcap and PREFIX-b.pcap
"""
import argparse
import struct


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(src_side: int, dst_side: int, s: int, d: int, sport: int) -> bytes:
    src = 0x020000000000 | (src_side << 16) | s
    dst = 0x020000000000 | (dst_side << 16) | d
    sip = (10 << 24) | (src_side << 16) | s
    dip = (10 << 24) | (dst_side << 16) | d
    l4 = struct.pack("!HHHH", sport, 5000, 8 + 18, 0) + bytes(18)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0, 64, 17, 0,
                     sip.to_bytes(4, "big"), dip.to_bytes(4, "big"))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    eth = dst.to_bytes(6, "big") + src.to_bytes(6, "big") + b"\x08\x00"
    f = eth + ip + l4
    return f + bytes(max(0, 60 - len(f)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-H", type=int, default=500, help="hosts per side (default 500)")
    ap.add_argument("-f", type=int, default=1000, help="frames (flows) per side (default 1000)")
    ap.add_argument("-o", required=True, help="output prefix")
    a = ap.parse_args()
    for me, other, name in ((0x0A, 0x0B, "a"), (0x0B, 0x0A, "b")):
        with open("%s-%s.pcap" % (a.o, name), "wb") as out:
            out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for k in range(a.f):
                f = frame(me, other, k % a.H, (7 * k + 3) % a.H, 1024 + k // a.H)
                out.write(struct.pack("<IIII", k // 1000000, k % 1000000, len(f), len(f)))
                out.write(f)


if __name__ == "__main__":
    main()
