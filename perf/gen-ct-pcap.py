#!/usr/bin/env python3
"""Pcaps for the connection-tracking scenarios of perf/run.sh (CT*: perf/flows/CT.flows).

Connection k (0 <= k < N) goes from client 10.0.0.0 + k + 1, port 1024 + k % 64, to the
server 10.200.0.1 (UDP port 53, TCP port 80). Every checksum is right: both switches'
trackers verify them. The same frames as crates/pipeline/benches/common (ct_frames), so
perf/icount.sh counts the path these pcaps drive.

  -k commit   one UDP datagram per connection, one way (CTc): every packet is +new (no
              reply is ever seen) and goes through ct(commit)
  -k est      a datagram and its reply per connection (CTe): once replayed, all +est
  -k synrst   a SYN and the server's RST+ACK per connection (CTr): each replay of the
              pcap opens every connection anew (a SYN on a closed connection is a new
              one, in Linux, Open vSwitch and ferroflowd), so new connections per second
              are half the packets per second

Usage: gen-ct-pcap.py -k commit|est|synrst -n N -o OUT.pcap
"""
import argparse
import struct


def csum(data, s=0):
    if len(data) % 2:
        data += b"\0"
    for (w,) in struct.iter_unpack("!H", data):
        s += w
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def fold(s):
    return (~s) & 0xFFFF


MAC_SRC = bytes.fromhex("020000000001")
MAC_DST = bytes.fromhex("020000000002")
SERVER = 0x0AC80001


def ip_frame(sip, dip, proto, l4):
    l4 = bytearray(l4)
    total = 20 + len(l4)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, proto, 0,
                               sip.to_bytes(4, "big"), dip.to_bytes(4, "big")))
    ip[10:12] = struct.pack("!H", fold(csum(bytes(ip))))
    pseudo = sip.to_bytes(4, "big") + dip.to_bytes(4, "big") + struct.pack("!BBH", 0, proto, len(l4))
    at = 16 if proto == 6 else 6
    l4[at:at + 2] = struct.pack("!H", fold(csum(bytes(l4), csum(pseudo))))
    f = MAC_DST + MAC_SRC + b"\x08\x00" + bytes(ip) + bytes(l4)
    return f + b"\0" * (60 - len(f))


def udp(sip, sport, dip, dport):
    return ip_frame(sip, dip, 17, struct.pack("!HHHH", sport, dport, 26, 0) + b"\x5a" * 18)


def tcp(sip, sport, dip, dport, flags, seq, ack):
    return ip_frame(sip, dip, 6, struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 0xFAF0, 0, 0))


def frames(kind, n):
    for k in range(n):
        c = 0x0A000000 + k + 1
        sport = 1024 + k % 64
        if kind == "commit":
            yield udp(c, sport, SERVER, 53)
        elif kind == "est":
            yield udp(c, sport, SERVER, 53)
            yield udp(SERVER, 53, c, sport)
        else:
            isn = 1000 + k
            yield tcp(c, sport, SERVER, 80, 0x02, isn, 0)
            yield tcp(SERVER, 80, c, sport, 0x14, 0, isn + 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", "--kind", choices=["commit", "est", "synrst"], required=True)
    ap.add_argument("-n", "--conns", type=int, required=True)
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames(a.kind, a.conns)):
            f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(fr), len(fr)))
            f.write(fr)


if __name__ == "__main__":
    main()
