"""Sends IPv6 frames an instance must not be able to send, and one it may, with
scapy. Usage (inside the instance's namespace):
ipv6_forge.py IFACE OWN_MAC OWN_LL OWN_IP VICTIM_IP VICTIM_MAC COUNT
- spoof: UDP from an address that is not the instance's;
- na:    a Neighbor Advertisement claiming the victim's address for our MAC;
- ra:    a Router Advertisement with a prefix (instances are no routers);
- ok:    UDP from the instance's own address (must arrive: the control)."""
import sys

from scapy.all import (ICMPv6ND_NA, ICMPv6ND_RA, ICMPv6NDOptDstLLAddr,
                       ICMPv6NDOptPrefixInfo, ICMPv6NDOptSrcLLAddr, IPv6, UDP,
                       Ether, Raw, sendp)

iface, own_mac, own_ll, own_ip, victim_ip, victim_mac, count = sys.argv[1:8]
count = int(count)
allnodes = "33:33:00:00:00:01"
frames = {
    "spoof": Ether(src=own_mac, dst=victim_mac)
    / IPv6(src="fd00::99", dst=victim_ip)
    / UDP(sport=4000, dport=4000)
    / Raw(b"spoofed-v6"),
    "na": Ether(src=own_mac, dst=allnodes)
    / IPv6(src=own_ll, dst="ff02::1", hlim=255)
    / ICMPv6ND_NA(tgt=victim_ip, R=0, S=0, O=1)
    / ICMPv6NDOptDstLLAddr(lladdr=own_mac),
    "ra": Ether(src=own_mac, dst=allnodes)
    / IPv6(src=own_ll, dst="ff02::1", hlim=255)
    / ICMPv6ND_RA(routerlifetime=1800)
    / ICMPv6NDOptSrcLLAddr(lladdr=own_mac)
    / ICMPv6NDOptPrefixInfo(prefix="2001:db8:bad::", prefixlen=64),
    "ok": Ether(src=own_mac, dst=victim_mac)
    / IPv6(src=own_ip, dst=victim_ip)
    / UDP(sport=4001, dport=4001)
    / Raw(b"honest-v6"),
}
for name, f in frames.items():
    sendp(f, iface=iface, count=count, verbose=False)
    print(name, count)
