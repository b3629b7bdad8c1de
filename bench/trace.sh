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

# TRACER=path measures a given build of examples/trace instead of building one.
if [ -z "${TRACER:-}" ]; then
    cargo build --release --quiet --example trace
    TRACER="$PWD/target/release/examples/trace"
fi
tracer="$TRACER"
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
"$tracer" --no-readlink --summary nolink.txt -- $one
echo "One compile (gcc -c, 5 system headers + 1 local):"
sed -n '1,11p' one.txt | sed 's/^/    /'
echo "The same with readlink untraced: $(head -1 nolink.txt)"

bench() { # NAME PLAIN TRACED: one interleaved hyperfine pair, exported as JSON
    hyperfine -N --warmup 2 --runs "$runs" --export-json "$1.json" \
        -n plain "$2" -n traced "$3" >/dev/null
}
bench one "$one" "$tracer -- $one"
bench four "$four" "$tracer -- $four"
bench nolink "$one" "$tracer --no-readlink -- $one"
if command -v taskset >/dev/null; then
    # Tracer and tracee on one CPU: no cross-CPU wakeup per stop.
    bench pinned "taskset -c 0 $four" "taskset -c 0 $tracer -- $four"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
python3 - one.json four.json nolink.json pinned.json <<'PY'
import json, os, sys
print("| compile | plain wall ms | traced wall ms | wall ratio | plain CPU ms | traced CPU ms | CPU ratio |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
names = {"one.json": "1 file", "four.json": "4 files", "pinned.json": "4 files, one CPU",
         "nolink.json": "1 file, readlink untraced"}
for f in sys.argv[1:]:
    if not os.path.exists(f):
        continue
    r = {x["command"]: x for x in json.load(open(f))["results"]}
    p, t = r["plain"], r["traced"]
    wall = lambda x: x["median"] * 1000
    cpu = lambda x: (x["user"] + x["system"]) * 1000
    print(f"| {names[f]} | {wall(p):.1f} | {wall(t):.1f} | {wall(t)/wall(p):.2f} "
          f"| {cpu(p):.1f} | {cpu(t):.1f} | {cpu(t)/cpu(p):.2f} |")
PY
