#!/usr/bin/env python3
"""Random headers for the ACL scenario (perf/flows/ACL.flows): N 60-byte Ethernet/IPv4
TCP or UDP frames whose addresses are drawn half from the ACL's ranges (10/8,
192.168/16, 172.16/12, 10.10.0.0/20, 10.20.0.0/28) and half from anywhere, with random
ports (destination often 22, 53, 80 or 443), DSCP (often 46) and source MAC (a share in
the dropped 06:00:00 OUI). Every frame differs, so OVS's megaflow cache sees a new
combination of unwildcarded bits in most packets; crates/pipeline/benches/common draws
the same distribution for perf/icount.sh. Deterministic (fixed seed); no dependencies.

  gen-acl-pcap.py [-n 10000] [--seed 1] -o FILE
"""
import argparse
import random
import struct

RANGES = [
    (0x0A000000, 0xFF000000),
    (0xC0A80000, 0xFFFF0000),
    (0xAC100000, 0xFFF00000),
    (0x0A0A0000, 0xFFFFF000),
    (0x0A140000, 0xFFFFFFF0),
]


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def addr(rng: random.Random) -> int:
    a = rng.getrandbits(32)
    if rng.random() < 0.5:
        v, m = rng.choice(RANGES)
        return v | (a & ~m & 0xFFFFFFFF)
    return a


def frame(rng: random.Random) -> bytes:
    sip, dip = addr(rng), addr(rng)
    udp = rng.random() < 0.5
    dport = rng.choice([22, 53, 80, 443]) if rng.random() < 0.5 else rng.getrandbits(16)
    sport = rng.getrandbits(16)
    dscp = rng.choice([0, 46, 10, rng.getrandbits(6)])
    src = 0x020000000000 | rng.getrandbits(24) | (0x040000000000 if rng.random() < 0.5 else 0)
    dst = 0x020000000001
    proto = 17 if udp else 6
    if udp:
        l4 = struct.pack("!HHHH", sport, dport, 8 + 18, 0) + bytes(18)
    else:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x10, 0x2000, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, dscp << 2, 20 + len(l4), 0, 0, 64, proto, 0,
                     sip.to_bytes(4, "big"), dip.to_bytes(4, "big"))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, proto, len(l4))
    c = csum(pseudo + l4) or (0xFFFF if udp else 0)
    at = 6 if udp else 16
    l4 = l4[:at] + struct.pack("!H", c) + l4[at + 2:]
    eth = dst.to_bytes(6, "big") + src.to_bytes(6, "big") + b"\x08\x00"
    f = eth + ip + l4
    return f + bytes(max(0, 60 - len(f)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=10000, help="frames (default 10000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", required=True)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with open(a.o, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(a.n):
            f = frame(rng)
            out.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(f), len(f)))
            out.write(f)


if __name__ == "__main__":
    main()
