#!/usr/bin/env python3
"""Stops one thread of another process with ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT),
leaving the rest of the process running (SIGSTOP would stop every thread), until its
standard input closes or a line arrives; then lets it go (PTRACE_DETACH).

Usage: stall_thread.py TID   -- prints "stopped TID" once the thread is stopped.
The tests use it to play a stuck datapath worker."""
import ctypes
import os
import sys

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


def ptrace(req, tid):
    if libc.ptrace(req, tid, None, None) != 0:
        err = ctypes.get_errno()
        sys.exit(f"ptrace({req:#x}, {tid}): {os.strerror(err)}")


def main():
    tid = int(sys.argv[1])
    ptrace(PTRACE_SEIZE, tid)
    ptrace(PTRACE_INTERRUPT, tid)
    _, status = os.waitpid(tid, WALL)
    if not os.WIFSTOPPED(status):
        sys.exit(f"thread {tid} did not stop: {status:#x}")
    print(f"stopped {tid}", flush=True)
    try:
        sys.stdin.readline()
    finally:
        ptrace(PTRACE_DETACH, tid)


if __name__ == "__main__":
    main()
