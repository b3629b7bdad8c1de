#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the system packages the tests
# need (as root, through apt), then lints, runs every test, and smoke-tests the
# benchmark suite. `.ci/run` calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(redis-server redis-tools nginx openssl make time hyperfine)
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    missing=()
    for pkg in "${packages[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "test.sh: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
else
    echo "test.sh: not root or no apt-get: assuming ${packages[*]} are installed" >&2
fi

cargo fmt --all --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
if [ -x bench/run.sh ]; then
    bench/run.sh --quick
fi
