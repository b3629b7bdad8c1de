#!/usr/bin/env bash
# The long reliability run (docs/reliability.md): the same suites as `cargo test`, with
# long iteration counts and a long soak, then (when nightly and cargo-fuzz are present)
# libFuzzer over each fuzz target. Prints each suite's figures; fails on the first bug.
#
#   scripts/reliability.sh                 # about 20 minutes on 2 cores
#   SOAK_SECS=3600 FUZZ_ITERS=1000000 scripts/reliability.sh
set -euo pipefail
cd "$(dirname "$0")/.."

seed=${SEED:-$(date +%s)}
export IDEM_TEST_SEED=$seed
export IDEM_FUZZ_SEED=$seed
export IDEM_FUZZ_ITERS=${FUZZ_ITERS:-100000}
export IDEM_KEYS_ITERS=${KEYS_ITERS:-20000}
export IDEM_CRASH_ITERS=${CRASH_ITERS:-400}
export IDEM_SOAK_SECS=${SOAK_SECS:-300}
echo "reliability: seed $seed (rerun a failure with SEED=$seed)"

# run SUITE [THREADS]: fuzz is a test binary of its own (it installs a counting global
# allocator); the other suites are modules of the one integration binary, tests/it.
run() {
    echo "== $1"
    local log status=0 target=(--test it "$1::")
    [ "$1" = fuzz ] && target=(--test fuzz)
    log=$(mktemp)
    cargo test --quiet "${target[@]}" -- --nocapture --test-threads="${2:-2}" >"$log" 2>&1 || status=$?
    grep -E '^(fuzz|keys|crash|soak|hit on|http remote|url )|test result' "$log" || true
    if [ "$status" != 0 ]; then
        tail -60 "$log"
        exit "$status"
    fi
    rm -f "$log"
}

run fuzz
run keys
run crash 1
run faults 1
run soak 1
run hostile

if cargo +nightly --version >/dev/null 2>&1 && cargo +nightly fuzz --version >/dev/null 2>&1; then
    secs=${LIBFUZZER_SECS:-60}
    for target in $(cargo +nightly fuzz list --fuzz-dir fuzz); do
        echo "== libFuzzer $target, ${secs}s"
        cargo +nightly fuzz run --fuzz-dir fuzz "$target" -- -max_total_time="$secs" -rss_limit_mb=512 2>&1 |
            grep -E '^Done|SUMMARY|panicked' || true
    done
else
    echo "== libFuzzer skipped: needs nightly and cargo-fuzz (cargo install cargo-fuzz)"
fi
