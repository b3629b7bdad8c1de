#!/usr/bin/env python3
"""Interleaved A/B of short commands: spawns each command in a shuffled round-robin N
times (stdout/stderr to /dev/null), so load changes hit every command alike, and prints
each one's median wall time and its ratio to the LAST command (the peer).

    bench/tools/ab.py 400 "idem-a run --cache-dir C -- true" \
        "idem-b run --cache-dir C -- true" "bkt --ttl=1h -- true"

Arguments are split on spaces (no quoting); give programs by absolute path. Used for
the same-round binary comparisons of docs/benchmarks.md H13; bench/run.sh stays the
reference for targets."""
import os
import random
import statistics
import sys
import time


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    n = int(sys.argv[1])
    cmds = [c.split() for c in sys.argv[2:]]
    devnull = os.open("/dev/null", os.O_RDWR)
    quiet = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]

    def once(argv):
        start = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=quiet)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            sys.exit(f"{' '.join(argv)} failed: wait status {status}")
        return (time.perf_counter_ns() - start) / 1e6

    for argv in cmds:  # warm-up: page cache, the caches' hot files
        for _ in range(10):
            once(argv)
    times = [[] for _ in cmds]
    for _ in range(n):
        order = list(range(len(cmds)))
        random.shuffle(order)
        for j in order:
            times[j].append(once(cmds[j]))
    medians = [statistics.median(t) for t in times]
    for argv, m in zip(cmds, medians):
        print(f"{m:8.3f} ms  {m / medians[-1]:5.2f}  {' '.join(argv)}")


if __name__ == "__main__":
    main()
