"""Traffic ends for tests/conntrack_switch.rs (run inside a namespace, bounded by `timeout`).

serve SPEC...     TCP listeners (tcp:PORT, answer "hi"), TCP echoes that greet and keep the
                  connection (hold:PORT) and UDP echoes (udp:PORT)
hold HOST PORT FILE  connect to a hold: listener and print ok once greeted; when FILE
                  appears (at most 60 s later) send "x" on the same connection and print
                  echo if it comes back, else timeout
tcp HOST PORT [SPORT]
                  connect (from source port SPORT if given), read the greeting: prints
                  ok, refused or timeout
udp HOST PORT [N [SPORT]]
                  N sockets (own source ports; SPORT, SPORT+1, ... if given) each send
                  one datagram: prints how many got an answer, and 'refused' if an ICMP
                  port unreachable arrived
"""
import socket
import sys
import threading


def serve_tcp(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        c.sendall(b"hi")
        c.close()


def echo(c):
    with c:
        while True:
            data = c.recv(2048)
            if not data:
                return
            c.sendall(data)


def serve_hold(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        c.sendall(b"hi")
        threading.Thread(target=echo, args=(c,), daemon=True).start()


def serve_udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(data, peer)


def main():
    mode = sys.argv[1]
    if mode == "serve":
        threads = []
        for spec in sys.argv[2:]:
            proto, port = spec.split(":")
            fn = {"tcp": serve_tcp, "hold": serve_hold, "udp": serve_udp}[proto]
            t = threading.Thread(target=fn, args=(int(port),), daemon=True)
            t.start()
            threads.append(t)
        print("ready", flush=True)
        for t in threads:
            t.join()
    elif mode == "hold":
        import os
        import time

        c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=2)
        c.settimeout(2)
        print("ok" if c.recv(2) == b"hi" else "bad", flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(sys.argv[4]) and time.monotonic() < deadline:
            time.sleep(0.05)
        c.sendall(b"x")
        try:
            print("echo" if c.recv(1) == b"x" else "bad", flush=True)
        except OSError:
            print("timeout", flush=True)
        c.close()
    elif mode == "tcp":
        try:
            source = ("", int(sys.argv[4])) if len(sys.argv) > 4 else None
            c = socket.create_connection(
                (sys.argv[2], int(sys.argv[3])), timeout=2, source_address=source
            )
            c.settimeout(2)
            print("ok" if c.recv(2) == b"hi" else "bad")
        except ConnectionRefusedError:
            print("refused")
        except OSError:
            print("timeout")
    elif mode == "udp":
        n = int(sys.argv[4]) if len(sys.argv) > 4 else 1
        sport = int(sys.argv[5]) if len(sys.argv) > 5 else None
        socks = []
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            if sport is not None:
                s.bind(("", sport + i))
            s.connect((sys.argv[2], int(sys.argv[3])))
            s.settimeout(1.5)
            s.send(b"ping%d" % i)
            socks.append(s)
        answered, refused = 0, False
        for s in socks:
            try:
                if s.recv(64).startswith(b"ping"):
                    answered += 1
            except ConnectionRefusedError:
                refused = True
            except OSError:
                pass
        print("refused" if refused else answered)


main()
