#!/usr/bin/env bash
# The hit path of a traced record (docs/trace.md §1, "Checking entries"): a
# deps::trace::Checker over a real gcc compile's entry set and over 1,000 system paths,
# against a plain loop of lstat over the same paths, as a ratio (docs/benchmarks.md H11).
#   bench/trace_check.sh            # 300 checks of each set
#   bench/trace_check.sh --quick    # 30 (smoke test)
set -euo pipefail
cd "$(dirname "$0")/.."
iters=300
[ "${1:-}" = "--quick" ] && iters=30
# CHECKER=path measures a given build of examples/trace_check instead of building one.
if [ -z "${CHECKER:-}" ]; then
    cargo build --release --quiet --example trace_check
    CHECKER="$PWD/target/release/examples/trace_check"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$CHECKER" --iters "$iters"
