#!/usr/bin/python3
"""Records the Linux kernel's conntrack verdicts for crafted packet sequences.

Builds three network namespaces: a client side (A), a router (R) and a server side (B),
joined by veth pairs. The router forwards between 10.1.0.0/24 | fd01::/64 and
10.2.0.0/24 | fd02::/64 and counts every forwarded packet under the `ct state` it got
(nftables counters, one rule per verdict). The ends have no addresses, so nothing answers:
every packet in a sequence is crafted here (scapy) and sent on a raw socket, one at a
time, and the verdict is read from the counter that moved.

Writes JSON: [{"case", "frame" (hex Ethernet frame as the router received it), "kernel"}].
The Rust test (tests/kernel_diff.rs) feeds the same frames to our tracker and compares.
Needs root, iproute2, nftables and python3-scapy. Cleans up its namespaces on any exit.
"""
import json
import os
import socket
import subprocess
import sys
import time

from scapy.all import Ether, IP, IPv6, TCP, UDP, ICMP, ICMPv6EchoRequest, ICMPv6EchoReply, ICMPv6DestUnreach, ICMPv6TimeExceeded, IPv6ExtHdrDestOpt, Raw  # noqa: E402

TAG = f"ctd{os.getpid() % 100000}"
NS_A, NS_R, NS_B = f"{TAG}a", f"{TAG}r", f"{TAG}b"
MAC_A, MAC_RA, MAC_RB, MAC_B = "02:00:00:00:0a:01", "02:00:00:00:0a:02", "02:00:00:00:0b:02", "02:00:00:00:0b:01"
CLI4, SRV4, CLI6, SRV6 = "10.1.0.2", "10.2.0.2", "fd01::2", "fd02::2"
VERDICTS = ["new", "established", "related", "invalid"]


def sh(*args, check=True):
    p = subprocess.run(args, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def nsx(ns, *args, check=True):
    return sh("ip", "netns", "exec", ns, *args, check=check)


def setup():
    for ns in (NS_A, NS_R, NS_B):
        sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", "ra", "netns", NS_R, "address", MAC_RA, "type", "veth", "peer", "name", "va", "netns", NS_A, "address", MAC_A)
    sh("ip", "link", "add", "rb", "netns", NS_R, "address", MAC_RB, "type", "veth", "peer", "name", "vb", "netns", NS_B, "address", MAC_B)
    for ns, ifs in ((NS_A, ["va"]), (NS_B, ["vb"])):
        for i in ifs:
            nsx(ns, "sysctl", "-qw", f"net.ipv6.conf.{i}.disable_ipv6=1")
            nsx(ns, "ip", "link", "set", i, "up")
    r = lambda *a: nsx(NS_R, *a)  # noqa: E731
    r("sysctl", "-qw", "net.ipv4.ip_forward=1")
    r("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    r("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0")
    r("sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0")
    for i, v4, v6, peer4, peer6, mac in (("ra", "10.1.0.1/24", "fd01::1/64", CLI4, CLI6, MAC_A), ("rb", "10.2.0.1/24", "fd02::1/64", SRV4, SRV6, MAC_B)):
        r("sysctl", "-qw", f"net.ipv4.conf.{i}.rp_filter=0")
        r("ip", "link", "set", i, "up")
        r("ip", "addr", "add", v4, "dev", i)
        r("ip", "addr", "add", v6, "dev", i, "nodad")
        r("ip", "neigh", "replace", peer4, "lladdr", mac, "dev", i, "nud", "permanent")
        r("ip", "neigh", "replace", peer6, "lladdr", mac, "dev", i, "nud", "permanent")
    rules = "table inet ferroct {\n chain counts {\n  type filter hook forward priority 0; policy accept;\n"
    for v in VERDICTS:
        rules += f"  ct state {v} counter\n"
    rules += " }\n}\n"
    subprocess.run(["ip", "netns", "exec", NS_R, "nft", "-f", "-"], input=rules, check=True, text=True)


def cleanup():
    for ns in (NS_A, NS_R, NS_B):
        sh("ip", "netns", "del", ns, check=False)


def counters():
    out = json.loads(nsx(NS_R, "nft", "-j", "list", "table", "inet", "ferroct"))
    res = {}
    for item in out["nftables"]:
        rule = item.get("rule")
        if not rule:
            continue
        verdict = cnt = None
        for e in rule["expr"]:
            if "match" in e:
                verdict = e["match"]["right"]
                verdict = verdict[0] if isinstance(verdict, list) else verdict
            if "counter" in e:
                cnt = e["counter"]["packets"]
        res[verdict] = cnt
    return res


def raw_socket(ns, ifname):
    """An AF_PACKET socket bound to an interface of another namespace (created inside it)."""
    fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        if libc.setns(fd, 0) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((ifname, 0))
    finally:
        libc.setns(own, 0)
        os.close(fd)
        os.close(own)
    return s


def cases():
    """(case, direction, packet): 'o' goes client -> server, 'r' server -> client."""
    out = []

    def v4(case, d, l4):
        src, dst = (CLI4, SRV4) if d == "o" else (SRV4, CLI4)
        out.append((case, d, IP(src=src, dst=dst, ttl=64) / l4))

    def v6(case, d, l4):
        src, dst = (CLI6, SRV6) if d == "o" else (SRV6, CLI6)
        out.append((case, d, IPv6(src=src, dst=dst, hlim=64) / l4))

    opts = [("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]
    for fam, add in (("v4", v4), ("v6", v6)):
        # A whole connection: handshake, data out of order, a retransmission, close.
        c, s = 1000, 5000
        p = (40001, 80)
        add(f"{fam} handshake syn", "o", TCP(sport=p[0], dport=p[1], flags="S", seq=c, window=64240, options=opts))
        add(f"{fam} handshake syn retransmitted", "o", TCP(sport=p[0], dport=p[1], flags="S", seq=c, window=64240, options=opts))
        add(f"{fam} handshake syn-ack", "r", TCP(sport=p[1], dport=p[0], flags="SA", seq=s, ack=c + 1, window=65160, options=opts))
        add(f"{fam} handshake ack", "o", TCP(sport=p[0], dport=p[1], flags="A", seq=c + 1, ack=s + 1, window=502))
        add(f"{fam} data", "o", TCP(sport=p[0], dport=p[1], flags="PA", seq=c + 1, ack=s + 1, window=502) / Raw(b"x" * 100))
        add(f"{fam} data out of order (after a gap)", "o", TCP(sport=p[0], dport=p[1], flags="PA", seq=c + 201, ack=s + 1, window=502) / Raw(b"z" * 100))
        add(f"{fam} data filling the gap", "o", TCP(sport=p[0], dport=p[1], flags="PA", seq=c + 101, ack=s + 1, window=502) / Raw(b"y" * 100))
        add(f"{fam} ack of all data", "r", TCP(sport=p[1], dport=p[0], flags="A", seq=s + 1, ack=c + 301, window=509))
        add(f"{fam} old data retransmitted", "o", TCP(sport=p[0], dport=p[1], flags="PA", seq=c + 1, ack=s + 1, window=502) / Raw(b"x" * 100))
        add(f"{fam} data far beyond the window", "o", TCP(sport=p[0], dport=p[1], flags="PA", seq=c + 50_000_000, ack=s + 1, window=502) / Raw(b"w" * 10))
        add(f"{fam} ack of data never sent", "r", TCP(sport=p[1], dport=p[0], flags="A", seq=s + 1, ack=c + 9_000_000, window=509))
        add(f"{fam} fin", "o", TCP(sport=p[0], dport=p[1], flags="FA", seq=c + 301, ack=s + 1, window=502))
        add(f"{fam} fin-ack", "r", TCP(sport=p[1], dport=p[0], flags="FA", seq=s + 1, ack=c + 302, window=509))
        add(f"{fam} last ack", "o", TCP(sport=p[0], dport=p[1], flags="A", seq=c + 302, ack=s + 2, window=502))
        # A SYN-ACK with no SYN, from either side.
        add(f"{fam} syn-ack without syn (server)", "r", TCP(sport=80, dport=40002, flags="SA", seq=7000, ack=3001, window=65160))
        add(f"{fam} syn-ack without syn (client)", "o", TCP(sport=40003, dport=80, flags="SA", seq=7000, ack=3001, window=65160))
        # Mid-stream pick-up (Linux's tcp_loose).
        add(f"{fam} ack without connection (picked up)", "o", TCP(sport=40004, dport=80, flags="A", seq=100, ack=200, window=1000))
        add(f"{fam} reply to the picked-up connection", "r", TCP(sport=80, dport=40004, flags="A", seq=200, ack=100, window=1000))
        # Bad flag combinations.
        add(f"{fam} syn+fin", "o", TCP(sport=40005, dport=80, flags="SF", seq=1))
        add(f"{fam} no flags", "o", TCP(sport=40006, dport=80, flags="", seq=1))
        add(f"{fam} fin alone", "o", TCP(sport=40007, dport=80, flags="F", seq=1))
        # SYN, then the client ACKs before any SYN-ACK.
        add(f"{fam} syn (early ack case)", "o", TCP(sport=40008, dport=80, flags="S", seq=10, window=64240))
        add(f"{fam} ack before syn-ack", "o", TCP(sport=40008, dport=80, flags="A", seq=11, ack=500, window=64240))
        # SYN refused with RST, then tried again.
        add(f"{fam} syn (refused case)", "o", TCP(sport=40009, dport=81, flags="S", seq=20, window=64240))
        add(f"{fam} rst-ack refusing it", "r", TCP(sport=81, dport=40009, flags="RA", seq=0, ack=21, window=0))
        add(f"{fam} syn again after rst", "o", TCP(sport=40009, dport=81, flags="S", seq=30, window=64240))
        # A bad TCP checksum.
        add(f"{fam} syn with bad checksum", "o", TCP(sport=40010, dport=80, flags="S", seq=1, window=64240, chksum=0x1234))
        # UDP, and an ICMP port unreachable about it.
        add(f"{fam} udp request", "o", UDP(sport=50001, dport=53) / Raw(b"q" * 20))
        add(f"{fam} udp reply", "r", UDP(sport=53, dport=50001) / Raw(b"a" * 40))
        add(f"{fam} udp second request", "o", UDP(sport=50001, dport=53) / Raw(b"q" * 20))
        add(f"{fam} udp to a closed port", "o", UDP(sport=50002, dport=9999) / Raw(b"q" * 8))
        # Window scaling: the server advertises a small raw window scaled by 2^7.
        c, s = 70000, 90000
        q = (40020, 80)
        wopts = [("MSS", 1460), ("WScale", 7)]
        add(f"{fam} wscale syn", "o", TCP(sport=q[0], dport=q[1], flags="S", seq=c, window=64240, options=wopts))
        add(f"{fam} wscale syn-ack", "r", TCP(sport=q[1], dport=q[0], flags="SA", seq=s, ack=c + 1, window=65160, options=wopts))
        add(f"{fam} wscale ack (window 100 << 7)", "o", TCP(sport=q[0], dport=q[1], flags="A", seq=c + 1, ack=s + 1, window=100))
        add(f"{fam} wscale server ack (window 100 << 7)", "r", TCP(sport=q[1], dport=q[0], flags="A", seq=s + 1, ack=c + 1, window=100))
        add(f"{fam} data inside the scaled window", "o", TCP(sport=q[0], dport=q[1], flags="PA", seq=c + 1 + 10000, ack=s + 1, window=100) / Raw(b"d" * 100))
        add(f"{fam} data beyond the scaled window", "o", TCP(sport=q[0], dport=q[1], flags="PA", seq=c + 1 + 200000, ack=s + 1, window=100) / Raw(b"d" * 100))
        add(f"{fam} rst with a sequence far behind", "r", TCP(sport=q[1], dport=q[0], flags="R", seq=(s - 100000) % 2**32))
        add(f"{fam} rst in window", "r", TCP(sport=q[1], dport=q[0], flags="R", seq=s + 1))
        add(f"{fam} data after the rst", "o", TCP(sport=q[0], dport=q[1], flags="PA", seq=c + 1, ack=s + 1, window=100) / Raw(b"e" * 10))
        # Simultaneous open.
        c, s = 3000, 4000
        q = (40021, 5000)
        add(f"{fam} simultaneous open: syn", "o", TCP(sport=q[0], dport=q[1], flags="S", seq=c, window=64240))
        add(f"{fam} simultaneous open: syn from the other side", "r", TCP(sport=q[1], dport=q[0], flags="S", seq=s, window=64240))
        add(f"{fam} simultaneous open: syn-ack", "o", TCP(sport=q[0], dport=q[1], flags="SA", seq=c, ack=s + 1, window=64240))
        add(f"{fam} simultaneous open: syn-ack back", "r", TCP(sport=q[1], dport=q[0], flags="SA", seq=s, ack=c + 1, window=64240))
        add(f"{fam} simultaneous open: ack", "o", TCP(sport=q[0], dport=q[1], flags="A", seq=c + 1, ack=s + 1, window=64240))
        # A closed connection reopened from TIME_WAIT.
        c, s = 8000, 9000
        q = (40022, 80)
        for name, d, fl, sq, ak in (("syn", "o", "S", c, 0), ("syn-ack", "r", "SA", s, c + 1), ("ack", "o", "A", c + 1, s + 1),
                                     ("fin", "o", "FA", c + 1, s + 1), ("fin-ack", "r", "FA", s + 1, c + 2), ("last ack", "o", "A", c + 2, s + 2),
                                     ("new syn in time-wait", "o", "S", c + 100000, 0), ("its syn-ack", "r", "SA", s + 50000, c + 100001)):
            src, dst = (q[0], q[1]) if d == "o" else (q[1], q[0])
            add(f"{fam} reopen: {name}", d, TCP(sport=src, dport=dst, flags=fl, seq=sq, ack=ak, window=64240))
        # The server's SYN-ACK acknowledges the wrong sequence number.
        add(f"{fam} syn (bad syn-ack case)", "o", TCP(sport=40023, dport=80, flags="S", seq=500, window=64240))
        add(f"{fam} syn-ack acking the wrong number", "r", TCP(sport=80, dport=40023, flags="SA", seq=600, ack=9999, window=64240))
        # A UDP datagram whose length field overruns the packet.
        add(f"{fam} udp with a bad length", "o", UDP(sport=50003, dport=53, len=200) / Raw(b"q" * 8))
    # ICMP errors quote the packet as the server got it.
    v4("v4 icmp port unreachable (tracked udp)", "r", ICMP(type=3, code=3) / IP(src=CLI4, dst=SRV4, ttl=63) / UDP(sport=50002, dport=9999) / Raw(b"q" * 8))
    v4("v4 icmp port unreachable (unknown udp)", "r", ICMP(type=3, code=3) / IP(src=CLI4, dst=SRV4, ttl=63) / UDP(sport=50099, dport=9999) / Raw(b"q" * 8))
    v4("v4 icmp host unreachable (tracked tcp, from the client side)", "o", ICMP(type=3, code=1) / IP(src=SRV4, dst=CLI4, ttl=63) / TCP(sport=80, dport=40001, flags="A", seq=5001))
    v6("v6 icmpv6 port unreachable (tracked udp)", "r", ICMPv6DestUnreach(code=4) / IPv6(src=CLI6, dst=SRV6, hlim=63) / UDP(sport=50002, dport=9999) / Raw(b"q" * 8))
    v6("v6 icmpv6 port unreachable (unknown udp)", "r", ICMPv6DestUnreach(code=4) / IPv6(src=CLI6, dst=SRV6, hlim=63) / UDP(sport=50099, dport=9999) / Raw(b"q" * 8))
    v6("v6 icmpv6 time exceeded (tracked tcp)", "r", ICMPv6TimeExceeded() / IPv6(src=CLI6, dst=SRV6, hlim=1) / TCP(sport=40001, dport=80, flags="A", seq=1301))
    v6("v6 udp behind a destination-options header", "o", IPv6ExtHdrDestOpt() / UDP(sport=50010, dport=53) / Raw(b"q" * 8))
    v6("v6 udp reply to it", "r", UDP(sport=53, dport=50010) / Raw(b"a" * 8))
    v4("v4 icmp time exceeded from a router (tracked udp)", "r", ICMP(type=11, code=0) / IP(src=CLI4, dst=SRV4, ttl=1) / UDP(sport=50001, dport=53) / Raw(b"q" * 8))
    v4("v4 icmp error quoting an echo request", "r", ICMP(type=3, code=1) / IP(src=CLI4, dst=SRV4, ttl=63) / ICMP(type=8, id=79, seq=1))
    # Echo.
    v4("v4 echo request", "o", ICMP(type=8, id=77, seq=1) / Raw(b"p" * 16))
    v4("v4 echo reply", "r", ICMP(type=0, id=77, seq=1) / Raw(b"p" * 16))
    v4("v4 echo reply without request", "r", ICMP(type=0, id=78, seq=1) / Raw(b"p" * 16))
    v4("v4 echo request the other way (same id)", "r", ICMP(type=8, id=77, seq=2) / Raw(b"p" * 16))
    v6("v6 echo request", "o", ICMPv6EchoRequest(id=77, seq=1) / Raw(b"p" * 16))
    v6("v6 echo reply", "r", ICMPv6EchoReply(id=77, seq=1) / Raw(b"p" * 16))
    v6("v6 echo reply without request", "r", ICMPv6EchoReply(id=78, seq=1) / Raw(b"p" * 16))
    v4("v4 timestamp request", "o", ICMP(type=13, id=90, seq=1, ts_ori=1, ts_rx=0, ts_tx=0))
    v4("v4 timestamp reply", "r", ICMP(type=14, id=90, seq=1, ts_ori=1, ts_rx=2, ts_tx=3))
    v4("v4 echo reply with the timestamp's id", "r", ICMP(type=0, id=90, seq=1) / Raw(b"p" * 16))
    v4("v4 timestamp reply without request", "r", ICMP(type=14, id=91, seq=1, ts_ori=1, ts_rx=2, ts_tx=3))
    v4("v4 router advertisement", "o", ICMP(type=9, code=0) / Raw(b"\0" * 8))
    v4("v4 echo request (error case)", "o", ICMP(type=8, id=79, seq=1) / Raw(b"p" * 16))
    v4("v4 icmp error quoting the tracked echo request", "r", ICMP(type=3, code=1) / IP(src=CLI4, dst=SRV4, ttl=63) / ICMP(type=8, id=79, seq=1) / Raw(b"p" * 16))
    return out


def main():
    out_path = sys.argv[1]
    cleanup()
    try:
        setup()
        sock = {"o": raw_socket(NS_A, "va"), "r": raw_socket(NS_B, "vb")}
        records = []
        before = counters()
        for case, d, pkt in cases():
            eth = Ether(src=MAC_A, dst=MAC_RA) if d == "o" else Ether(src=MAC_B, dst=MAC_RB)
            frame = bytes(eth / pkt)
            sock[d].send(frame)
            # Every packet moves exactly one counter, so the wait ends at once; the bound is
            # only a guard, long enough for a loaded machine (CI at load 20 once took over
            # 2 s: the late counter was then read as the next packet's verdict).
            deadline = time.monotonic() + 30.0
            verdict = "not forwarded"
            while time.monotonic() < deadline:
                now = counters()
                moved = [v for v in VERDICTS if now.get(v, 0) != before.get(v, 0)]
                if moved:
                    verdict = moved[0] if len(moved) == 1 else "+".join(moved)
                    before = now
                    break
                time.sleep(0.002)
            records.append({"case": case, "frame": frame.hex(), "kernel": verdict})
        with open(out_path, "w") as f:
            json.dump({"kernel": os.uname().release, "packets": records}, f, indent=1)
            f.write("\n")
    finally:
        cleanup()


if __name__ == "__main__":
    main()
