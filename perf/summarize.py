#!/usr/bin/env python3
"""Table of medians from perf/run.sh's results.txt.

Input lines (one per run):
    <switch> <scenario> <mpps> <cycles_per_pkt> [key=value ...]   switch: ferroflowd | ovs-dpdk | testpmd
    <switch> flowmod:<N> add_s=... dumped=... flows=... ...
    <switch> <scenario> FAILED ...
    ferroflowd flowcheck:<F> rules=N installed=M ok|MISMATCH|REFUSED ...
    # comment (machine, versions)
Prints markdown: per scenario the medians for ferroflowd, OVS-DPDK and the
testpmd io ceiling of the same traffic, cycles/packet, the ratio
ferroflowd/OVS and the DESIGN.md section 5 target with a verdict.
Usage: summarize.py results.txt
"""
import statistics
import sys
from collections import OrderedDict

# Issue 15's targets (DESIGN.md section 5), checked against the medians below:
# scenario -> (text, minimum ratio ff/OVS). V:vhost is judged by cycles/packet
# (OVS's over ours), the others by Mpps.
TARGETS = OrderedDict([
    ("A:p1k", ("≥ 1.2x OVS and ≥ 50% of testpmd io", 1.2)),
    ("B1k:p1k", ("≥ 1.5x OVS", 1.5)),
    ("B10k:p100k", ("≥ 2x OVS and ≥ 70% of our B1k:p1k", 2.0)),
    # B1k:p100k-1k (no target: a control) is B1k's tables under B10k's 100k distinct
    # frames (over B1k's 1k instances): B10k against it is the bigger tables' cost alone.
    ("C10k:p100k", ("≥ 3x OVS", 3.0)),
    ("B1k:p1k-md", ("≥ 1.5x OVS", 1.5)),
    ("VXe:p1k", ("≥ 1.0x OVS", 1.0)),
    ("VXd:vx1k", ("≥ 1.0x OVS", 1.0)),
    ("N:l2", ("≥ 1.5x OVS", 1.5)),
    ("ACL:rand10k", ("≥ 10x OVS", 10.0)),
    # Issue 17: connection tracking, at least 1.5x in packets/s and in new connections/s
    # (CTr: half its packets are new connections, so the two ratios are the same).
    ("CTc:ct10k", ("≥ 1.5x OVS", 1.5)),
    ("CTe:ct10k-est", ("≥ 1.5x OVS", 1.5)),
    ("CTr:ct10k-synrst", ("≥ 1.5x OVS in new connections/s", 1.5)),
    ("V:vhost", ("≥ 1.0x OVS in cycles/packet", 1.0)),
])
# flow-mods: ferroflowd's --bundle add-flows ≥ 2x as fast as OVS's --bundle, and
# its one gRPC batch ≥ 10x as fast as OVS's add-flows.
FLOWMOD_BUNDLE, FLOWMOD_GRPC = 2.0, 10.0


def num(v):
    try:
        return float(v.rstrip("%").lstrip("~"))
    except (ValueError, AttributeError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    runs = OrderedDict()      # (switch, scenario) -> [kv]
    fails = []
    checks = []
    comments = []
    order = []
    for line in open(sys.argv[1] if len(sys.argv) > 1 else "/dev/stdin"):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line[1:].strip())
            continue
        parts = line.split()
        if len(parts) < 3:
            continue
        sw, sc = parts[0], parts[1]
        if sc.startswith("flowcheck:"):
            checks.append(line)
            continue
        if "FAILED" in parts[2:4]:
            fails.append(line)
            runs.setdefault((sw, sc), [])
            if sc not in order and sw != "testpmd":
                order.append(sc)
            continue
        kv = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
        if not sc.startswith("flowmod:"):
            kv["mpps"], kv["cpp"] = parts[2], parts[3]
        runs.setdefault((sw, sc), []).append(kv)
        if sc not in order and sw != "testpmd":
            order.append(sc)

    def m(sw, sc, key):
        return med([num(r.get(key)) for r in runs.get((sw, sc), [])])

    def vals(sw, sc, key="mpps"):
        return "/".join("%.2f" % num(r[key]) for r in runs.get((sw, sc), []) if num(r.get(key)) is not None)

    for c in comments:
        print("- " + c)
    print()
    if checks:
        print("Flow files loaded into ferroflowd (rules in the file / rules in dump-flows):")
        print()
        for c in checks:
            print("- `" + c + "`")
        print()
    print("| scenario | ferroflowd Mpps (runs) | cyc/pkt | OVS-DPDK Mpps (runs) | cyc/pkt | ratio ff/OVS (per round) | testpmd io Mpps (cyc/pkt) | target | met? |")
    print("|---|---|---:|---|---:|---:|---|---|---|")
    for sc in order:
        if sc.startswith("flowmod:"):
            continue
        ff, ovs = m("ferroflowd", sc, "mpps"), m("ovs-dpdk", sc, "mpps")
        ffc, ovc = m("ferroflowd", sc, "cpp"), m("ovs-dpdk", sc, "cpp")
        traffic = sc.split(":")[1]
        tp, tpc = m("testpmd", "io:" + traffic, "mpps"), m("testpmd", "io:" + traffic, "cpp")
        ratio = ff / ovs if ff is not None and ovs else None  # ratio of the medians
        # paired: the two switches ran back to back in each round
        by_round = lambda sw: {r.get("round"): num(r["mpps"]) for r in runs.get((sw, sc), [])}
        fr, orr = by_round("ferroflowd"), by_round("ovs-dpdk")
        pairs = ["%.2f" % (fr[k] / orr[k]) for k in fr if k in orr and orr[k]]
        tgt, need = TARGETS.get(sc, ("-", None))
        verdict = "-"
        if ratio is not None and need is not None:
            ok = ratio >= need
            extra = ""
            if sc == "V:vhost":
                cr = ovc / ffc if ffc and ovc else None
                ok = cr is not None and cr >= need
                extra = ", %s by cycles/packet" % ("%.2fx" % cr if cr else "?")
            if sc == "A:p1k" and tp:
                ok = ok and ff >= 0.5 * tp
                extra = ", %.0f%% of testpmd" % (100 * ff / tp)
            if sc == "B10k:p100k":
                b1k = m("ferroflowd", "B1k:p1k", "mpps")
                if b1k:
                    ok = ok and ff >= 0.7 * b1k
                    extra = ", %.0f%% of our B1k" % (100 * ff / b1k)
                # The same 100k frames over B1k's tables: what the bigger tables cost alone.
                same = m("ferroflowd", "B1k:p100k-1k", "mpps")
                if same:
                    extra += " (%.0f%% of our B1k:p100k-1k)" % (100 * ff / same)
            verdict = ("yes" if ok else "**no**") + extra
        elif ff is None:
            verdict = "**failed**"
        g = m("ferroflowd", sc, "guest_tx_mpps"), m("ovs-dpdk", sc, "guest_tx_mpps")
        gnote = " (guest tx %.1f / %.1f)" % g if g[0] is not None and g[1] is not None else ""
        f = lambda x, fmt="%.2f": fmt % x if x is not None else "-"
        print("| %s%s | **%s** (%s) | %s | **%s** (%s) | %s | **%s** | %s | %s | %s |" % (
            sc, gnote, f(ff), vals("ferroflowd", sc) or "-", f(ffc, "%.0f"),
            f(ovs), vals("ovs-dpdk", sc) or "-", f(ovc, "%.0f"),
            f(ratio, "%.2fx") + (" (%s)" % "/".join(pairs) if pairs else ""),
            "%s (%s)" % (f(tp), f(tpc, "%.0f")) if tp else "-", tgt, verdict))

    # Where ferroflowd's cycles went: forward + flush (the switch's own work: parse,
    # tables, actions, tx) and the rest of the worker's busy loop, that is mostly the rx
    # bursts (the source PMD: net_pcap copies each frame out of its stored mbufs, which
    # for 100k distinct frames are cold in the caches).
    split = [sc for sc in order if m("ferroflowd", sc, "fwd_cpp") is not None]
    if split:
        print()
        print("| ferroflowd cycles/packet (medians) | whole loop | forward + flush | rx bursts and the rest |")
        print("|---|---:|---:|---:|")
        for sc in split:
            print("| %s | %.0f | %.0f | %.0f |" % (
                sc, m("ferroflowd", sc, "cpp") or 0, m("ferroflowd", sc, "fwd_cpp"),
                m("ferroflowd", sc, "rx_cpp") or 0))

    # The connection rate: each CTr packet pair is one connection opened anew.
    for sc in order:
        if sc.startswith("CTr:"):
            ff, ovs = m("ferroflowd", sc, "mpps"), m("ovs-dpdk", sc, "mpps")
            f = lambda x: "%.2f M/s" % (x / 2) if x is not None else "-"
            print()
            print("New connections per second (%s, half its packets): ferroflowd %s, OVS-DPDK %s" % (sc, f(ff), f(ovs)))
    # The tunnel's own cost: cycles/packet of the VXLAN scenarios over B1k's (the
    # same flows and inner frames without the tunnel), per switch.
    tun = [sc for sc in ("VXe:p1k", "VXd:vx1k") if sc in order]
    if tun and "B1k:p1k" in order:
        print()
        print("| tunnel cost over B1k:p1k (cycles/packet) | ferroflowd | OVS-DPDK |")
        print("|---|---:|---:|")
        cost = {}
        for sc in tun:
            row = []
            for sw in ("ferroflowd", "ovs-dpdk"):
                c, b = m(sw, sc, "cpp"), m(sw, "B1k:p1k", "cpp")
                d = c - b if c is not None and b is not None else None
                cost[(sw, sc)] = d
                row.append("%+.0f (%.0f - %.0f)" % (d, c, b) if d is not None else "-")
            print("| %s (%s) | %s | %s |" % (sc, "encap" if sc.startswith("VXe") else "decap", row[0], row[1]))
        if len(tun) == 2:
            both = ["%+.0f" % (cost[(sw, tun[0])] + cost[(sw, tun[1])])
                    if cost[(sw, tun[0])] is not None and cost[(sw, tun[1])] is not None else "-"
                    for sw in ("ferroflowd", "ovs-dpdk")]
            print("| encap + decap | %s | %s |" % tuple(both))

    fm = [sc for sc in order if sc.startswith("flowmod:")]
    if fm:
        print()
        print("| flow-mods (`ovs-ofctl -O OpenFlow13 add-flows`) | ferroflowd add s (runs) | OVS-DPDK add s (runs) | speed-up | ff dump / del s | OVS dump / del s | `--bundle` add s ff / OVS | ff gRPC batch s | target | met? |")
        target = "`--bundle` ≥ %gx OVS's `--bundle`, gRPC batch ≥ %gx OVS's add-flows" % (FLOWMOD_BUNDLE, FLOWMOD_GRPC)
        print("|---|---|---|---:|---|---|---|---|---|---|")
        for sc in fm:
            fa, oa = m("ferroflowd", sc, "add_s"), m("ovs-dpdk", sc, "add_s")
            n = m("ferroflowd", sc, "flows") or m("ovs-dpdk", sc, "flows")
            dumped = [r.get("dumped") for r in runs.get(("ferroflowd", sc), [])]

            def bund(sw):
                bs = [r.get("bundle_add_s") for r in runs.get((sw, sc), [])]
                nb = [num(b) for b in bs if num(b) is not None]
                return ("%.2f" % statistics.median(nb)) if nb else (bs[0] if bs else "-")
            gs = [num(r.get("grpc_add_s")) for r in runs.get(("ferroflowd", sc), [])]
            gs = [g for g in gs if g is not None]
            grpc = ("%.2f" % statistics.median(gs)) if gs else "-"
            su = oa / fa if fa and oa else None
            fb = med([num(r.get("bundle_add_s")) for r in runs.get(("ferroflowd", sc), [])])
            ob = med([num(r.get("bundle_add_s")) for r in runs.get(("ovs-dpdk", sc), [])])
            gm = statistics.median(gs) if gs else None
            parts = []
            if fb and ob:
                parts.append("bundle %.1fx" % (ob / fb))
            else:
                parts.append("bundle -")
            if gm and oa:
                parts.append("gRPC %.1fx" % (oa / gm))
            else:
                parts.append("gRPC -")
            ok = bool(fb and ob and gm and oa and ob / fb >= FLOWMOD_BUNDLE and oa / gm >= FLOWMOD_GRPC)
            print("| %s (%s rules; ff dumped %s) | **%s** (%s) | **%s** (%s) | **%s** | %s / %s | %s / %s | %s / %s | %s | %s | %s |" % (
                sc, "%d" % n if n else "?", "/".join(d or "?" for d in dumped) or "-",
                "%.2f" % fa if fa else "-", vals("ferroflowd", sc, "add_s") or "-",
                "%.2f" % oa if oa else "-", vals("ovs-dpdk", sc, "add_s") or "-",
                ("%.1fx" % su if su >= 1 else "%.3fx (%.0fx slower)" % (su, 1 / su)) if su else "-",
                "%.2f" % (m("ferroflowd", sc, "dump_s") or 0), "%.2f" % (m("ferroflowd", sc, "del_s") or 0),
                "%.2f" % (m("ovs-dpdk", sc, "dump_s") or 0), "%.2f" % (m("ovs-dpdk", sc, "del_s") or 0),
                bund("ferroflowd"), bund("ovs-dpdk"), grpc, target,
                ("yes" if ok else "**no**") + " (" + ", ".join(parts) + ")"))
    if fails:
        print()
        print("Failures:")
        print()
        for f in fails:
            print("- `" + f + "`")


if __name__ == "__main__":
    main()
