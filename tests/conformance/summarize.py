#!/usr/bin/env python3
"""Verdicts of the os-ken switch test tool over every chunk log of a run.

Usage: summarize.py FILES FAILED WALL NAME KNOWN LOG...

FILES: the test files of the run (one path a line); FAILED: written with the files that
have a failed case (for retries); WALL: seconds, printed; NAME: printed; KNOWN: the list of
known tester bugs (tests/conformance/known-tester-bugs.txt); LOG...: chunk logs in run
order (first run, then retries): a case's verdict is the one of the last log that ran it.

Each log is one run of the tool: its cases, then its own "--- Test report ---". Every log
is read to its end (the cases after one report belong to the next chunk if logs were
concatenated), and each report's "OK(n) / ERROR(m)" must equal the cases read from that log:
a log whose counts disagree, or that has no report at all (the tool died, hung, or never
started), is a failure in itself. Exit status: 0 only when every case passed or failed on a
listed tester bug and every log is whole; 1 otherwise.
"""
import collections
import fnmatch
import json
import re
import sys

CASE = re.compile(r"^    (\S.*?)\s+(OK|ERROR)$")
REPORT_TOTALS = re.compile(r"^OK\((\d+)\) / ERROR\((\d+)\)$")


def load_known(path):
    """(file description glob, case description glob, reason) per non-comment line."""
    known = []
    for line in open(path):
        line = line.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("|")
        if len(parts) != 3:
            sys.exit("summarize: %s: bad line (FILE|CASE|REASON): %s" % (path, line))
        known.append(tuple(p.strip() for p in parts))
    return known


def main():
    files_txt, failed_txt, wall, name, known_txt = sys.argv[1:6]
    logs = sys.argv[6:]
    files = [f for f in open(files_txt).read().splitlines() if f]
    desc = {}
    for f in files:
        try:
            desc[json.load(open(f))[0]] = f
        except Exception:
            pass
    known = load_known(known_txt)
    res = {}
    broken = []
    for log in logs:
        try:
            lines = open(log, errors="replace").read().splitlines()
        except OSError as e:
            broken.append("%s: unreadable (%s)" % (log, e))
            continue
        cur, in_report, seen = None, False, collections.Counter()
        parsed = collections.Counter()
        reported = collections.Counter()
        reports = 0
        for i, l in enumerate(lines):
            if l.startswith("--- Test report"):
                in_report, cur = True, None
                reports += 1
                continue
            if l.strip() in desc and not l.startswith(" "):
                # A test file's header: the next chunk's cases, if a report came before.
                cur, in_report = l.strip(), False
                continue
            if in_report:
                t = REPORT_TOTALS.match(l.strip())
                if t:
                    reported["OK"] += int(t.group(1))
                    reported["ERROR"] += int(t.group(2))
                continue
            m = CASE.match(l)
            if not m or cur is None:
                continue
            k = (cur, m.group(1))
            seen[k] += 1
            parsed[m.group(2)] += 1
            cat = ""
            if m.group(2) == "ERROR":
                d = lines[i + 1].strip() if i + 1 < len(lines) else ""
                cat = d.split(":")[0]
                t = re.search(r"type=0x..", d)
                if "OFPErrorMsg" in d and t:
                    cat += " " + t.group(0)
            res[k + (seen[k],)] = (m.group(2), cat)
        if reports == 0:
            broken.append("%s: no test report (the tool did not finish)" % log)
        elif parsed != reported:
            broken.append(
                "%s: the reports count OK %d / ERROR %d, the log holds OK %d / ERROR %d"
                % (log, reported["OK"], reported["ERROR"], parsed["OK"], parsed["ERROR"])
            )

    def known_reason(k):
        for fglob, cglob, reason in known:
            if fnmatch.fnmatchcase(k[0], fglob) and fnmatch.fnmatchcase(k[1], cglob):
                return reason
        return None

    ok = sum(1 for v, _ in res.values() if v == "OK")
    errors = [k for k, (v, _) in res.items() if v == "ERROR"]
    explained = [(k, known_reason(k)) for k in errors if known_reason(k)]
    unexplained = [k for k in errors if not known_reason(k)]
    cats = collections.Counter(res[k][1] for k in unexplained)
    failed = sorted({desc[k[0]] for k in errors})
    open(failed_txt, "w").write("".join(f + "\n" for f in failed))
    print("SUMMARY %s: OK %d / ERROR %d (wall %s s)" % (name.replace(" ", ","), ok, len(errors), wall))
    print("    known tester bugs: %d, unexplained errors: %d, broken logs: %d"
          % (len(explained), len(unexplained), len(broken)))
    for c, n in cats.most_common():
        print("    %4d  %s" % (n, c))
    for k in sorted(unexplained):
        print("!!! FAILED: %s: %s" % (k[0], k[1]))
    for k, reason in sorted(explained):
        print("!!! KNOWN TESTER BUG (not a pass, not counted against us): %s: %s -- %s"
              % (k[0], k[1], reason))
    for b in broken:
        print("!!! BROKEN LOG: %s" % b)
    sys.exit(0 if not unexplained and not broken else 1)


if __name__ == "__main__":
    main()
