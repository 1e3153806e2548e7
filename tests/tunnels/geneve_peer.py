"""A Geneve endpoint made with scapy, for tests/tunnels.rs (this kernel has no geneve module).

Sends ICMP echo requests to an instance behind ferroflowd's Geneve port, encapsulated in
Geneve with an option, and decodes what comes back with scapy's own Geneve layer: prints
one JSON object per reply seen (VNI, UDP ports, whether the UDP checksum is right, the inner
ICMP type), then a summary line.

usage: geneve_peer.py IFACE OUR_MAC SWITCH_MAC LOCAL_IP REMOTE_IP VNI INNER_SRC_MAC INNER_DST_MAC INNER_SRC INNER_DST
"""
import json
import sys

from scapy.all import ICMP, IP, UDP, AsyncSniffer, Ether, Raw, sendp
from scapy.contrib.geneve import GENEVE, GeneveOptions

(iface, our_mac, switch_mac, local_ip, remote_ip, vni, in_src_mac, in_dst_mac, in_src,
 in_dst) = sys.argv[1:11]
vni = int(vni)

sniffer = AsyncSniffer(iface=iface, filter="udp dst port 6081 and src host " + remote_ip,
                       store=True)
sniffer.start()
import time
time.sleep(1.0)
for seq in range(3):
    inner = (Ether(src=in_src_mac, dst=in_dst_mac) / IP(src=in_src, dst=in_dst) /
             ICMP(type=8, id=0x4242, seq=seq) / Raw(b"ferroflow geneve"))
    outer = (Ether(src=our_mac, dst=switch_mac) / IP(src=local_ip, dst=remote_ip, flags="DF") /
             UDP(sport=50000 + seq, dport=6081) /
             GENEVE(vni=vni, proto=0x6558,
                    options=[GeneveOptions(classid=0x0102, type=0x01, length=1,
                                           data=b"\x00\x00\x00\x07")]) / inner)
    sendp(outer, iface=iface, verbose=False)
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
    again = Ether(bytes(p))
    del again[UDP].chksum
    again = Ether(bytes(again))
    inner = g.payload
    icmp_type = inner[ICMP].type if ICMP in inner else -1
    print(json.dumps({
        "vni": g.vni, "proto": g.proto, "sport": udp.sport, "dport": udp.dport,
        "udp_checksum": sent_sum, "udp_checksum_ok": sent_sum == 0 or sent_sum == again[UDP].chksum,
        "ip_df": bool(p[IP].flags & 2), "icmp_type": icmp_type,
        "inner_dst": inner[IP].dst if IP in inner else "",
    }))
    if icmp_type == 0:
        replies += 1
print(json.dumps({"replies": replies}))
