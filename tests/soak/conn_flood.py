"""Opens many OpenFlow connections to a switch and holds them: N plain TCP
connections that send HELLO, then (once those are closed) N TLS connections
that never finish their handshake (a ClientHello's first bytes, then
silence). Reports how many connected, how many the switch closed (and when),
and how many stayed open. One phase at a time: N fds each, under the hard
RLIMIT_NOFILE (20000 on these machines).
Usage: conn_flood.py HOST PLAIN_PORT TLS_PORT N HOLD_SECONDS"""
import errno
import resource
import selectors
import socket
import sys
import time

host, plain_port, tls_port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n + 1024
if hard != resource.RLIM_INFINITY and hard < want:
    sys.exit("conn_flood: needs %d fds, the hard limit is %d" % (want, hard))
resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
HELLO = bytes([4, 0, 0, 8, 0, 0, 0, 1])
# A TLS record header and the start of a ClientHello: the handshake never completes.
PARTIAL_CLIENT_HELLO = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])

sel = selectors.DefaultSelector()
stats = {
    kind: {"connected": 0, "errors": 0, "closed": 0, "first_close": None, "last_close": None}
    for kind in ("plain", "tls")
}
start = time.monotonic()


def opened(kind, port, first):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((host, port))
        s.sendall(first)
    except OSError:
        stats[kind]["errors"] += 1
        s.close()
        return
    s.setblocking(False)
    stats[kind]["connected"] += 1
    sel.register(s, selectors.EVENT_READ, kind)


def poll(timeout):
    for key, _ in sel.select(timeout):
        s, kind = key.fileobj, key.data
        try:
            data = s.recv(65536)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if not data:
            st = stats[kind]
            t = time.monotonic() - start
            st["closed"] += 1
            st["first_close"] = t if st["first_close"] is None else st["first_close"]
            st["last_close"] = t
            sel.unregister(s)
            s.close()


still = {k: 0 for k in stats}
opened_after = {}
for kind, port, first in (("plain", plain_port, HELLO), ("tls", tls_port, PARTIAL_CLIENT_HELLO)):
    start = time.monotonic()
    for i in range(n):
        opened(kind, port, first)
        if i % 200 == 0:
            poll(0)
    opened_after[kind] = time.monotonic() - start
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:
        poll(0.2)
    for key in list(sel.get_map().values()):
        still[key.data] += 1
        sel.unregister(key.fileobj)
        key.fileobj.close()


def fmt(kind):
    st = stats[kind]
    span = ""
    if st["first_close"] is not None:
        span = " (first at %.1f s, last at %.1f s)" % (st["first_close"], st["last_close"])
    return "%s: %d opened in %.1f s, connect errors %d, closed by the switch %d%s, open at the end %d" % (
        kind, st["connected"], opened_after[kind], st["errors"], st["closed"], span, still[kind])


print("%s; %s" % (fmt("plain"), fmt("tls")))
