"""A Geneve endpoint with options, made with scapy, for tests/tunnels_geneve.rs.

Sends COUNT ICMP echo requests to an instance behind ferroflowd's Geneve port, each in
Geneve with one option (class 0x0102, type 0x01, 4 bytes: OPTION, a hex number), and
decodes every Geneve frame the switch sends back with scapy's own Geneve layer: prints one
JSON object per frame (outer source, VNI, its options, the inner ICMP type), then a summary
line with the number of echo replies.

usage: geneve_options_peer.py IFACE OUR_MAC SWITCH_MAC OUR_IP SWITCH_IP VNI INNER_SRC_MAC
       INNER_DST_MAC INNER_SRC INNER_DST OPTION COUNT
"""
import json
import sys
import time

from scapy.all import ICMP, IP, UDP, AsyncSniffer, Ether, Raw, sendp
from scapy.contrib.geneve import GENEVE, GeneveOptions

(iface, our_mac, switch_mac, our_ip, switch_ip, vni, in_src_mac, in_dst_mac, in_src, in_dst,
 option, count) = sys.argv[1:13]
vni, option, count = int(vni), int(option, 16), int(count)

sniffer = AsyncSniffer(iface=iface, filter="udp dst port 6081 and dst host " + our_ip,
                       store=True)
sniffer.start()
time.sleep(1.0)
for seq in range(count):
    inner = (Ether(src=in_src_mac, dst=in_dst_mac) / IP(src=in_src, dst=in_dst) /
             ICMP(type=8, id=0x4343, seq=seq) / Raw(b"ferroflow geneve options"))
    outer = (Ether(src=our_mac, dst=switch_mac) / IP(src=our_ip, dst=switch_ip, flags="DF") /
             UDP(sport=51000 + seq, dport=6081) /
             GENEVE(vni=vni, proto=0x6558,
                    options=[GeneveOptions(classid=0x0102, type=0x01, length=1,
                                           data=option.to_bytes(4, "big"))]) / inner)
    sendp(outer, iface=iface, verbose=False)
    time.sleep(0.3)
time.sleep(1.0)
got = sniffer.stop()
replies = 0
for p in got:
    if GENEVE not in p:
        continue
    g = p[GENEVE]
    opts = [{"class": o.classid, "type": o.type, "data": bytes(o.data).hex()}
            for o in (g.options or [])]
    inner = g.payload
    icmp_type = inner[ICMP].type if ICMP in inner else -1
    print(json.dumps({"outer_src": p[IP].src, "vni": g.vni, "options": opts,
                      "icmp_type": icmp_type}))
    if icmp_type == 0:
        replies += 1
print(json.dumps({"replies": replies}))
