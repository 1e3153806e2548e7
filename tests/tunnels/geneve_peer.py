"""A Geneve endpoint made with scapy, for tests/tunnels.rs and tests/tunnels_geneve.rs (this
kernel has no geneve module).

Sends COUNT ICMP echo requests to an instance behind ferroflowd's Geneve port, each in Geneve
with one option (class 0x0102, type 0x01, 4 bytes: OPTION, a hex number), and decodes every
Geneve frame the switch sends back with scapy's own Geneve layer: prints one JSON object per
frame (outer source, VNI, protocol, UDP ports, the UDP checksum and whether it is right, the
DF bit, the options, the inner ICMP type and destination), then a summary line with the
number of echo replies.

usage: geneve_peer.py IFACE OUR_MAC SWITCH_MAC OUR_IP SWITCH_IP VNI INNER_SRC_MAC
       INNER_DST_MAC INNER_SRC INNER_DST [--option HEX (7)] [--count N (3)]
"""
import argparse
import json
import time

from scapy.all import ICMP, IP, UDP, AsyncSniffer, Ether, Raw, sendp
from scapy.contrib.geneve import GENEVE, GeneveOptions

ap = argparse.ArgumentParser()
for name in ("iface", "our_mac", "switch_mac", "our_ip", "switch_ip", "vni", "in_src_mac",
             "in_dst_mac", "in_src", "in_dst"):
    ap.add_argument(name)
ap.add_argument("--option", default="7", help="the option's 4 bytes, a hex number")
ap.add_argument("--count", type=int, default=3, help="echo requests to send")
a = ap.parse_args()
vni, option = int(a.vni), int(a.option, 16)

# What the switch sends to us (not what we send, which the sniffer sees too).
sniffer = AsyncSniffer(iface=a.iface, filter="udp dst port 6081 and dst host " + a.our_ip,
                       store=True)
sniffer.start()
time.sleep(1.0)
for seq in range(a.count):
    inner = (Ether(src=a.in_src_mac, dst=a.in_dst_mac) / IP(src=a.in_src, dst=a.in_dst) /
             ICMP(type=8, id=0x4242, seq=seq) / Raw(b"ferroflow geneve"))
    outer = (Ether(src=a.our_mac, dst=a.switch_mac) /
             IP(src=a.our_ip, dst=a.switch_ip, flags="DF") /
             UDP(sport=50000 + seq, dport=6081) /
             GENEVE(vni=vni, proto=0x6558,
                    options=[GeneveOptions(classid=0x0102, type=0x01, length=1,
                                           data=option.to_bytes(4, "big"))]) / inner)
    sendp(outer, iface=a.iface, verbose=False)
    time.sleep(0.3)
time.sleep(1.0)
got = sniffer.stop()
replies = 0
for p in got:
    if GENEVE not in p:
        continue
    g = p[GENEVE]
    udp = p[UDP]
    sent_sum = udp.chksum
    # The checksum scapy computes for the same frame.
    again = Ether(bytes(p))
    del again[UDP].chksum
    again = Ether(bytes(again))
    opts = [{"class": o.classid, "type": o.type, "data": bytes(o.data).hex()}
            for o in (g.options or [])]
    inner = g.payload
    icmp_type = inner[ICMP].type if ICMP in inner else -1
    print(json.dumps({
        "outer_src": p[IP].src, "vni": g.vni, "proto": g.proto, "sport": udp.sport,
        "dport": udp.dport, "udp_checksum": sent_sum,
        "udp_checksum_ok": sent_sum == 0 or sent_sum == again[UDP].chksum,
        "ip_df": bool(p[IP].flags & 2), "options": opts, "icmp_type": icmp_type,
        "inner_dst": inner[IP].dst if IP in inner else "",
    }))
    if icmp_type == 0:
        replies += 1
print(json.dumps({"replies": replies}))
