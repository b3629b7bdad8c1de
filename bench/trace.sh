#!/usr/bin/env bash
# Overhead of idem's tracer (docs/trace.md, "Overhead"): a cold compile of a few C files
# with and without tracing, as hyperfine ratios, plus the syscall stops per compile.
#   bench/trace.sh            # 20 runs each
#   bench/trace.sh --quick    # 3 runs each (smoke test)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=20
[ "${1:-}" = "--quick" ] && runs=3
command -v hyperfine >/dev/null || { echo "trace.sh: hyperfine is needed" >&2; exit 1; }
command -v gcc >/dev/null || { echo "trace.sh: gcc is needed" >&2; exit 1; }

cargo build --release --quiet --example trace
tracer="$PWD/target/release/examples/trace"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Four translation units, each pulling in a handful of system headers.
for i in 1 2 3 4; do
    cat >"$work/unit$i.c" <<C
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <errno.h>
#include "common.h"
int unit$i(int argc, char **argv) {
    char buf[64];
    snprintf(buf, sizeof buf, "%d %s %f", argc, argv[0], sqrt((double)argc));
    return (int)strlen(buf) + COMMON + errno;
}
C
done
mkdir -p "$work/include"
echo '#define COMMON 1' >"$work/include/common.h"
cd "$work"
one="gcc -O1 -Iinclude -c unit1.c -o unit1.o"
four="gcc -O1 -Iinclude -c unit1.c unit2.c unit3.c unit4.c"

"$tracer" --summary one.txt -- $one
echo "One compile (gcc -c, 5 system headers + 1 local):"
sed -n '1,11p' one.txt | sed 's/^/    /'

hyperfine -N --warmup 2 --runs "$runs" --export-markdown compile.md \
    -n "gcc -c (1 file)" "$one" \
    -n "traced gcc -c (1 file)" "$tracer -- $one" \
    -n "gcc -c (4 files)" "$four" \
    -n "traced gcc -c (4 files)" "$tracer -- $four"
if command -v taskset >/dev/null; then
    # Tracer and tracee on one CPU: no cross-CPU wakeup per stop.
    hyperfine -N --warmup 2 --runs "$runs" --export-markdown pinned.md \
        -n "gcc -c (4 files), one CPU" "taskset -c 0 $four" \
        -n "traced gcc -c (4 files), one CPU" "taskset -c 0 $tracer -- $four"
fi
cat compile.md
if [ -f pinned.md ]; then cat pinned.md; fi
