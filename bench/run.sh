#!/usr/bin/env bash
# idem benchmark suite: idem against the tools a user would otherwise pick, measured in
# the same run, interleaved, and reported as ratios. See docs/benchmarks.md.
#
#   bench/run.sh            full suite (~2.5 GB of fixtures, 10-20 min); writes
#                           bench/results/latest.md
#   bench/run.sh --quick    every scenario once with tiny fixtures (CI); writes
#                           bench/results/quick.md and never fails on a missed target
#
# Options:
#   --quick          tiny fixtures, one run per command, no warmup
#   --strict         exit 1 when a target is missed (full mode only)
#   --no-install     never install missing peers (rows without a peer show n/a)
#   --workdir DIR    where fixtures go (default: a fresh mktemp -d under $TMPDIR)
#   --keep           keep the work directory at the end
#   --out FILE       where the markdown table goes
#   --idem PATH      measure this idem binary instead of building one (A/B of a patch)
#   --only LIST      comma-separated scenario groups to run:
#                    hit,records,tree,big,memory,concurrency,remote,trace (default: all);
#                    a full-mode partial run writes bench/results/only.md
#
# Environment: BENCH_LUA_CFLAGS overrides the flags of the trace group's Lua build
# (default "-O2 -DLUA_USE_LINUX -w"; "-O0 …" under --quick).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB="$ROOT/bench/lib/bench.py"

QUICK=0
STRICT=0
INSTALL=1
KEEP=0
WORKDIR=""
OUT=""
IDEM=""
ALL_GROUPS="hit,records,tree,big,memory,concurrency,remote,trace"
ONLY=$ALL_GROUPS

die() {
    echo "bench: error: $*" >&2
    exit 1
}
say() { echo "bench: $*" >&2; }

while (($#)); do
    case "$1" in
    --quick) QUICK=1 ;;
    --strict) STRICT=1 ;;
    --no-install) INSTALL=0 ;;
    --keep) KEEP=1 ;;
    --workdir)
        WORKDIR=${2:?--workdir needs a directory}
        shift
        ;;
    --out)
        OUT=${2:?--out needs a file}
        shift
        ;;
    --only)
        ONLY=${2:?--only needs a list, e.g. hit,tree}
        shift
        ;;
    --idem)
        IDEM=${2:?--idem needs the path of an idem binary}
        shift
        ;;
    -h | --help)
        sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown option '$1' (see bench/run.sh --help)" ;;
    esac
    shift
done

want() { [[ ",$ONLY," == *",$1,"* ]]; }

# ------------------------------------------------------------------ sizes and run counts
MB=$((1024 * 1024))
if ((QUICK)); then
    MODE="quick"
    TREE_FILES=100
    TREE_BYTES=$((2 * MB))
    BIG_BYTES=$((16 * MB))
    MEM_BYTES=$((8 * MB))
    RECORDS_MANY=10000
    RECORDS_FEW=1000
    CONCURRENT=50
    REMOTE_BYTES=$((8 * MB))
    REMOTE_FILES=20
    LUA_CFLAGS=${BENCH_LUA_CFLAGS:-"-O0 -DLUA_USE_LINUX -w"} # the figures mean nothing: build fast
    # rounds runs warmup, per class of scenario
    FAST=(1 1 0)
    MEDIUM=(1 1 0)
    SLOW=(1 1 0)
    MEM_RUNS=1
    OUT=${OUT:-$ROOT/bench/results/quick.md}
else
    MODE="full"
    TREE_FILES=10000
    TREE_BYTES=$((200 * MB))
    BIG_BYTES=$((1024 * MB))
    MEM_BYTES=$((500 * MB))
    RECORDS_MANY=1000000
    RECORDS_FEW=1000
    CONCURRENT=200
    REMOTE_BYTES=$((100 * MB))
    REMOTE_FILES=1000
    LUA_CFLAGS=${BENCH_LUA_CFLAGS:-"-O2 -DLUA_USE_LINUX -w"}
    FAST=(6 40 5)
    MEDIUM=(4 8 2)
    SLOW=(3 3 1)
    MEM_RUNS=3
    # A partial run must not replace the committed full results.
    if [[ "$ONLY" != "$ALL_GROUPS" ]]; then
        OUT=${OUT:-$ROOT/bench/results/only.md}
    else
        OUT=${OUT:-$ROOT/bench/results/latest.md}
    fi
fi

# ------------------------------------------------------------------------------- tools
need_apt() {
    local pkg=$1
    if ! command -v apt-get >/dev/null || [[ $(id -u) -ne 0 ]]; then
        die "$pkg is missing: install it (Debian/Ubuntu: apt-get install $pkg)"
    fi
    ((INSTALL)) || die "$pkg is missing and --no-install was given"
    say "installing $pkg with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >&2 ||
        die "apt-get install $pkg failed"
}

command -v hyperfine >/dev/null || need_apt hyperfine
[[ -x /usr/bin/time ]] || need_apt time
command -v python3 >/dev/null || die "python3 is needed (fixtures and report)"
command -v git >/dev/null || die "git is needed (the git status peer)"
command -v cargo >/dev/null || die "cargo is needed to build idem"

hf_version=$(hyperfine --version | awk '{print $2}')
if ! printf '1.13.0\n%s\n' "$hf_version" | sort -V -C; then
    die "hyperfine $hf_version is too old: 1.13 or newer is needed (for -N)"
fi

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
PEERS_OK=()
for crate in bkt b3sum; do
    if ! command -v "$crate" >/dev/null && ((INSTALL)); then
        say "installing $crate with cargo install (a few minutes, once)"
        cargo install --locked --quiet "$crate" >&2 || say "warning: cargo install $crate failed"
    fi
    if command -v "$crate" >/dev/null; then
        PEERS_OK+=("$crate")
    elif ((QUICK)); then
        say "warning: $crate is not available: its rows will say n/a"
    else
        die "$crate is needed for the full suite (cargo install --locked $crate)"
    fi
done
have() { [[ " ${PEERS_OK[*]} " == *" $1 "* ]]; }

# ------------------------------------------------------------------------------- build
IDEM_GIVEN=$IDEM
if [[ -n "$IDEM" ]]; then
    [[ -x "$IDEM" ]] || die "--idem $IDEM is not an executable"
    IDEM=$(cd "$(dirname "$IDEM")" && pwd)/$(basename "$IDEM")
    say "measuring $IDEM (not building)"
else
    say "building idem (release)"
    (cd "$ROOT" && cargo build --release --locked --quiet) >&2 || die "cargo build --release failed"
    IDEM="${CARGO_TARGET_DIR:-$ROOT/target}/release/idem"
    [[ -x "$IDEM" ]] || die "no binary at $IDEM after the build"
fi

# ---------------------------------------------------------------------------- work dir
if [[ -z "$WORKDIR" ]]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/idem-bench.XXXXXX")
else
    mkdir -p "$WORKDIR"
    WORK=$(cd "$WORKDIR" && pwd)
fi
[[ "$WORK" != *[[:space:]]* ]] || die "the work directory must not contain spaces: $WORK"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if ((KEEP)); then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

free_kb=$(df -Pk "$WORK" | awk 'NR==2 {print $4}')
need_kb=$(((TREE_BYTES * 2 + BIG_BYTES * 2 + MEM_BYTES) / 1024 + 300 * 1024))
((free_kb > need_kb)) || die "not enough space in $WORK: $((free_kb / 1024)) MB free, $((need_kb / 1024)) MB needed"

JSON="$WORK/json"
RESULTS="$WORK/results.jsonl"
mkdir -p "$JSON"
: >"$RESULTS"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# ------------------------------------------------------------------------- measuring
# measure SCEN "ROUNDS RUNS WARMUP" NAME PREPARE COMMAND [NAME PREPARE COMMAND ...]
#
# Interleaving: hyperfine runs all runs of one command before the next, so one long
# call would let machine load drift between idem and its peer. Instead each scenario is
# ROUNDS short hyperfine calls holding every command, and the command order is rotated
# from one round to the next (A B, B A, ...). The medians are taken over the runs of
# all rounds pooled (bench.py ratio).
measure() {
    local scen=$1
    local -a cls
    read -r -a cls <<<"$2"
    shift 2
    local rounds=${cls[0]} runs=${cls[1]} warmup=${cls[2]}
    local -a names=() preps=() cmds=()
    while (($#)); do
        names+=("$1")
        preps+=("${2:-true}")
        cmds+=("$3")
        shift 3
    done
    local n=${#names[@]} r i j
    for ((r = 0; r < rounds; r++)); do
        local -a args=() order=()
        for ((i = 0; i < n; i++)); do
            j=$(((i + r) % n))
            args+=(--prepare "${preps[j]}" --command-name "${names[j]}")
            order+=("${cmds[j]}")
        done
        # hyperfine's outlier warnings go to a log: on a shared machine they always fire,
        # and the per-round spread in the report says the same thing with numbers.
        hyperfine -N --style none --warmup "$warmup" --runs "$runs" \
            --export-json "$JSON/$scen.$r.json" "${args[@]}" "${order[@]}" \
            >/dev/null 2>>"$WORK/hyperfine.log" || {
            tail -n 20 "$WORK/hyperfine.log" >&2
            die "hyperfine failed in scenario $scen (a command exited non-zero?)"
        }
    done
}

# assert_hit DIR ARGS...: idem must replay (not run) for the measurement to mean anything.
assert_hit() {
    local dir=$1
    shift
    local err
    err=$(cd "$dir" && "$IDEM" run -v "$@" 2>&1 >/dev/null) || die "idem run $* failed: $err"
    [[ "$err" == *"idem: hit"* ]] || die "expected a hit for 'idem run $*', got: $err"
}

# ================================================================ 1. hit, no file deps
if want hit; then
    say "scenario: hit without file dependencies (vs bkt, vs true)"
    C="$WORK/cache-hit"
    BC="$WORK/bkt-hit"
    "$IDEM" run --cache-dir "$C" -- true
    assert_hit "$WORK" --cache-dir "$C" -- true
    specs=(idem true "$IDEM run --cache-dir $C -- true"
        true true "true")
    if have bkt; then
        bkt --cache-dir="$BC" --ttl=1h -- true
        specs+=(bkt true "bkt --cache-dir=$BC --ttl=1h -- true")
    fi
    (cd "$WORK" && measure hit "${FAST[*]}" "${specs[@]}")
    python3 "$LIB" ratio --results "$RESULTS" --id hit --kind ratio --max 1.0 \
        --scenario "hit, no file deps (\`idem run -- true\`)" --target "≤ 1.0" \
        --idem idem --peer "$(have bkt && echo bkt)" --peer-label "bkt --ttl=1h -- true" "$JSON"/hit.*.json
    python3 "$LIB" ratio --results "$RESULTS" --id overhead --kind overhead --max 1.0 \
        --scenario "hit overhead over the bare command" --target "≤ +1 ms" \
        --idem idem --peer true --peer-label "true" "$JSON"/hit.*.json
fi

# ============================================================ 2. hit with many records
if want records; then
    say "scenario: hit with $RECORDS_MANY vs $RECORDS_FEW records in the database"
    for n in "$RECORDS_MANY" "$RECORDS_FEW"; do
        C="$WORK/cache-rec-$n"
        "$IDEM" run --cache-dir "$C" -- true
        total=$(python3 "$LIB" fill-records "$C/idem.db" "$((n - 1))")
        ((total == n)) || die "expected $n records in $C, found $total"
        assert_hit "$WORK" --cache-dir "$C" -- true
    done
    (cd "$WORK" && measure records "${FAST[*]}" \
        many true "$IDEM run --cache-dir $WORK/cache-rec-$RECORDS_MANY -- true" \
        few true "$IDEM run --cache-dir $WORK/cache-rec-$RECORDS_FEW -- true")
    python3 "$LIB" ratio --results "$RESULTS" --id records --kind ratio --max 1.3 \
        --scenario "hit with $RECORDS_MANY records in the database" --target "≤ 1.3" \
        --idem many --peer few --peer-label "same hit, $RECORDS_FEW records" "$JSON"/records.*.json
    rm -rf "$WORK"/cache-rec-*
fi

# ====================================================================== 3. file tree
if want tree; then
    REPO="$WORK/repo"
    mkdir -p "$REPO/tree"
    say "fixture: $TREE_FILES files, ~$((TREE_BYTES / MB)) MB (seeded), committed to git"
    python3 "$LIB" gen-tree "$REPO/tree" "$TREE_FILES" "$TREE_BYTES" >/dev/null
    (
        cd "$REPO"
        export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_COMMITTER_NAME=bench \
            GIT_COMMITTER_EMAIL=bench@localhost GIT_AUTHOR_DATE="1700000000 +0000" GIT_COMMITTER_DATE="1700000000 +0000"
        git init -q .
        git config gc.auto 0
        git -c core.compression=0 -c core.looseCompression=0 add -A
        git commit -q -m fixture
        # No racily-clean index entries: index newer than every file by > 1 s.
        sleep 2
        git update-index -q --really-refresh
        [[ -z $(git status --porcelain) ]] || die "the fixture repository is not clean"
    )
    C="$WORK/cache-tree"
    (cd "$REPO" && "$IDEM" run --cache-dir "$C" -f tree/ -- true)
    assert_hit "$REPO" --cache-dir "$C" -f tree/ -- true

    say "scenario: warm hit on the tree (vs git status --porcelain)"
    (cd "$REPO" && measure tree-warm "${MEDIUM[*]}" \
        idem true "$IDEM run --cache-dir $C -f tree/ -- true" \
        git true "git status --porcelain")
    python3 "$LIB" ratio --results "$RESULTS" --id tree-warm --kind ratio --max 1.0 \
        --scenario "warm hit, $TREE_FILES files / $((TREE_BYTES / MB)) MB tree (\`-f tree/\`)" --target "≤ 1.0" \
        --idem idem --peer git --peer-label "git status --porcelain" "$JSON"/tree-warm.*.json

    say "scenario: cold hit on the tree, stat cache emptied before each run (vs b3sum)"
    specs=(idem "python3 $LIB clear-stat-cache $C/idem.db" "$IDEM run --cache-dir $C -f tree/ -- true")
    have b3sum && specs+=(b3sum true "find tree -type f -exec b3sum {} +")
    python3 "$LIB" clear-stat-cache "$C/idem.db"
    assert_hit "$REPO" --cache-dir "$C" -f tree/ -- true
    (cd "$REPO" && measure tree-cold "${MEDIUM[*]}" "${specs[@]}")
    python3 "$LIB" ratio --results "$RESULTS" --id tree-cold --kind ratio --max 1.0 \
        --scenario "cold hit path: same tree, stat cache empty" --target "≤ 1.0" \
        --idem idem --peer "$(have b3sum && echo b3sum)" --peer-label "find … -exec b3sum {} +" "$JSON"/tree-cold.*.json
    rm -rf "$REPO" "$C"
fi

# ===================================================================== 4. big files
if want big || want memory; then
    BIG="$WORK/big.bin"
    say "fixture: $((BIG_BYTES / MB)) MB file (seeded)"
    python3 "$LIB" gen-file "$BIG" "$BIG_BYTES"
    cat "$BIG" >/dev/null # page cache: every contender reads from memory
fi

if want big; then
    say "scenario: one big file dependency, stat cache empty (vs b3sum)"
    C="$WORK/cache-bigdep"
    "$IDEM" run --cache-dir "$C" -f "$BIG" -- true
    specs=(idem "python3 $LIB clear-stat-cache $C/idem.db" "$IDEM run --cache-dir $C -f $BIG -- true")
    have b3sum && specs+=(b3sum true "b3sum $BIG")
    (cd "$WORK" && measure bigdep "${SLOW[*]}" "${specs[@]}")
    python3 "$LIB" ratio --results "$RESULTS" --id bigdep --kind ratio --max 1.2 \
        --scenario "one $((BIG_BYTES / MB)) MB file dependency, cold" --target "≤ 1.2" \
        --idem idem --peer "$(have b3sum && echo b3sum)" --peer-label "b3sum FILE" "$JSON"/bigdep.*.json

    # The issue's other method: the stat cache is there, but the file was touched, so
    # its fingerprint no longer matches and the content is hashed again.
    say "scenario: one big file dependency, touched (vs b3sum)"
    specs=(idem "touch $BIG" "$IDEM run --cache-dir $C -f $BIG -- true")
    have b3sum && specs+=(b3sum true "b3sum $BIG")
    (cd "$WORK" && measure bigtouch "${SLOW[*]}" "${specs[@]}")
    python3 "$LIB" ratio --results "$RESULTS" --id bigtouch --kind ratio --max 1.2 \
        --scenario "one $((BIG_BYTES / MB)) MB file dependency, touched" --target "≤ 1.2" \
        --idem idem --peer "$(have b3sum && echo b3sum)" --peer-label "b3sum FILE" "$JSON"/bigtouch.*.json
    rm -rf "$C"

    say "scenario: miss capturing $((BIG_BYTES / MB)) MB of stdout (vs cat)"
    C="$WORK/cache-miss"
    (cd "$WORK" && measure miss "${SLOW[*]}" \
        idem "rm -rf $C" "$IDEM run --cache-dir $C -- cat $BIG" \
        cat true "cat $BIG" \
        floor "rm -f $WORK/floor.out" "sh -c 'cat $BIG | cat > $WORK/floor.out'")
    python3 "$LIB" ratio --results "$RESULTS" --id miss --kind ratio --max 1.5 \
        --scenario "miss, capture $((BIG_BYTES / MB)) MB of stdout (\`idem run -- cat big\` > /dev/null)" \
        --target "≤ 1.5" --idem idem --peer cat --peer-label "cat big > /dev/null" "$JSON"/miss.*.json
    python3 "$LIB" ratio --results "$RESULTS" --id miss-floor --kind info \
        --scenario "context: same miss vs the least any capture must do" --target "—" \
        --idem idem --peer floor --peer-label "cat big | cat > file" \
        --note "floor = pipe the bytes and write one copy to disk (what any capture must do), no hashing, no tee" "$JSON"/miss.*.json
    rm -rf "$C" "$WORK/floor.out"

    say "scenario: replay $((BIG_BYTES / MB)) MB of recorded stdout (vs cat)"
    C="$WORK/cache-replay"
    "$IDEM" run --cache-dir "$C" -- cat "$BIG" >/dev/null
    "$IDEM" run --cache-dir "$C" -- cat "$BIG" | cmp -s - "$BIG" || die "replayed stdout differs from the recorded bytes"
    assert_hit "$WORK" --cache-dir "$C" -- cat "$BIG"
    (cd "$WORK" && measure replay "${SLOW[*]}" \
        idem true "$IDEM run --cache-dir $C -- cat $BIG" \
        cat true "cat $BIG" \
        b3sum-cat true "sh -c 'b3sum $BIG && cat $BIG'")
    python3 "$LIB" ratio --results "$RESULTS" --id replay --kind ratio --max 1.5 \
        --scenario "replay $((BIG_BYTES / MB)) MB of recorded stdout" --target "≤ 1.5" \
        --idem idem --peer cat --peer-label "cat big > /dev/null" "$JSON"/replay.*.json
    if have b3sum; then
        python3 "$LIB" ratio --results "$RESULTS" --id replay-floor --kind info \
            --scenario "context: same replay vs verify-then-write" --target "—" \
            --idem idem --peer b3sum-cat --peer-label "b3sum big && cat big" \
            --note "idem verifies a blob's hash before writing a byte of it (DESIGN.md)" "$JSON"/replay.*.json
    fi
    rm -rf "$C"
fi

# ==================================================================== 5. peak memory
if want memory; then
    say "scenario: peak memory replaying $((MEM_BYTES / MB)) MB of stdout"
    C="$WORK/cache-mem"
    "$IDEM" run --cache-dir "$C" -- head -c "$MEM_BYTES" "$BIG" >/dev/null
    assert_hit "$WORK" --cache-dir "$C" -- head -c "$MEM_BYTES" "$BIG"
    rss=()
    for ((i = 0; i < MEM_RUNS; i++)); do
        /usr/bin/time -f %M -o "$WORK/rss" "$IDEM" run --cache-dir "$C" -- head -c "$MEM_BYTES" "$BIG" >/dev/null
        rss+=("$(tail -n1 "$WORK/rss")")
    done
    python3 "$LIB" value --results "$RESULTS" --id memory --kind rss --max 32 \
        --scenario "peak memory replaying $((MEM_BYTES / MB)) MB of stdout" --target "≤ 32 MB RSS" \
        --note "max RSS of $MEM_RUNS run(s), /usr/bin/time -f %M" "${rss[@]}"
    rm -rf "$C"
fi
rm -f "$WORK/big.bin"

# ===================================================================== 6. concurrency
if want concurrency; then
    say "scenario: $CONCURRENT concurrent distinct misses on one cache"
    C="$WORK/cache-conc"
    python3 "$LIB" concurrent "$IDEM" "$C" "$CONCURRENT" "$WORK/conc.json" ||
        die "the concurrency test itself failed"
    python3 "$LIB" value --results "$RESULTS" --id concurrency --kind concurrency \
        --scenario "$CONCURRENT concurrent distinct misses on one cache" --target "0 errors, report throughput" \
        --note "each run: idem run -- sh -c 'echo N'; error = non-zero exit, wrong stdout, a warning or a lost record" \
        "$WORK/conc.json"
    rm -rf "$C"
fi

# ======================================================================== 7. remote
# A hit served by the remote tier (local cache emptied before each run, so the record
# and its blobs come over loopback, are verified and replayed) against the raw
# transfer of the same bytes with the stock client; and the upload of a miss against
# the raw upload. Needs redis-server/redis-cli and nginx (WebDAV PUT) + curl; a
# missing server skips its rows with a warning.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    local port=$1 i
    for ((i = 0; i < 200; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    die "nothing listens on 127.0.0.1:$port"
}
# The 1,000-file rows move what a run leaves into a trash directory instead of deleting
# it: ext4 skips inodes deleted in the last minutes when it allocates new ones
# (recently_deleted, 60 s, 360 s while the inode table block is dirty), so after `rm -rf`
# of thousands of files every create scanned the inode bitmap and the row measured the
# previous run's deletions. Both sides get the same preparation. The trash (and the
# rows' other many-file directories) is only deleted with the work directory at exit:
# emptied after the Redis rows, its ~40,000 inodes made every create of the HTTP rows
# that follow scan them (both sides, idem twice: it creates 2,000 files to the peers'
# 1,000), which is most of why HTTP measured 4 x Redis on the same files (H16).
trash_sh() { echo "t=\$(mktemp -d $WORK/trash/t.XXXXXX) && for p in $*; do [ ! -e \$p ] || mv \$p \$t/; done"; }
# remote_rows NAME TOOL URL HIT_PEER UPLOAD_PEER UPLOAD_PEER_PREP CLEAR_REMOTE FILES_PEER [FILES_STREAM]
remote_rows() {
    local name=$1 tool=$2 url=$3 hit_peer=$4 up_peer=$5 up_prep=$6 clear=$7 files_peer=$8 files_stream=${9:-}
    local C="$WORK/cache-remote-$name" O="$WORK/remote-out"
    mkdir -p "$WORK/trash"
    (cd "$WORK" && "$IDEM" run --cache-dir "$C" --remote "$url" -- cat "$ROUT" >/dev/null)
    rm -rf "$C"
    (cd "$WORK" && "$IDEM" run -v --cache-dir "$C" --remote "$url" -- cat "$ROUT" 2>&1 >/dev/null) |
        grep -q "from the remote" || die "expected a remote hit from $name"
    (cd "$WORK" && measure "remote-$name-hit" "${SLOW[*]}" \
        idem "rm -rf $C" "$IDEM run --cache-dir $C --remote $url -- cat $ROUT" \
        raw true "$hit_peer")
    python3 "$LIB" ratio --results "$RESULTS" --id "remote-$name-hit" --kind ratio --max 1.5 \
        --scenario "$name remote hit, $((REMOTE_BYTES / MB)) MB of stdout (local cache empty)" --target "≤ 1.5" \
        --idem idem --peer raw --peer-label "$tool of the same bytes" "$JSON"/remote-"$name"-hit.*.json
    # REMOTE_FILES output files, restored from the remote.
    local files_cmd="sh -c 'rm -rf $O && cp -r $WORK/remote-src $O'"
    (cd "$WORK" && "$IDEM" run --cache-dir "$C" --remote "$url" -o "$O" -- sh -c "rm -rf $O && cp -r $WORK/remote-src $O")
    local raw_prep="sh -c '$(trash_sh "$WORK/raw-files") && mkdir -p $WORK/raw-files'"
    local -a stream=()
    [[ -z "$files_stream" ]] || stream=(stream "$raw_prep" "$files_stream")
    # Context: idem writes every file twice (its local cache, then the workspace); a
    # peer that also keeps a local copy writes the files a second time with `cp -r`.
    local files_inner=${files_peer#sh -c \'}
    files_inner=${files_inner%\'}
    local files_twice="sh -c '$files_inner && cp -r $WORK/remote-src $WORK/raw-files/cache'"
    (cd "$WORK" && measure "remote-$name-files" "${SLOW[*]}" \
        idem "sh -c '$(trash_sh "$C" "$O")'" "$IDEM run --cache-dir $C --remote $url -o $O -- $files_cmd" \
        raw "$raw_prep" "$files_peer" twice "$raw_prep" "$files_twice" "${stream[@]}")
    [[ $(find "$O" -type f | wc -l) -eq $REMOTE_FILES ]] || die "the $name remote did not restore $REMOTE_FILES files"
    python3 "$LIB" ratio --results "$RESULTS" --id "remote-$name-files" --kind ratio --max 1.5 \
        --scenario "$name remote hit, $REMOTE_FILES output files (local cache empty)" --target "≤ 1.5" \
        --idem idem --peer raw --peer-label "$tool of the same files, $REMOTE_FILES files written" "$JSON"/remote-"$name"-files.*.json
    python3 "$LIB" ratio --results "$RESULTS" --id "remote-$name-files-twice" --kind info \
        --scenario "context: the same hit against a peer that also keeps a local copy" --target "—" \
        --idem idem --peer twice --peer-label "$tool of the same files, written twice (cp -r for the copy)" \
        --note "idem stores every blob in its local cache, then restores the workspace from it" "$JSON"/remote-"$name"-files.*.json
    if [[ -n "$files_stream" ]]; then
        python3 "$LIB" ratio --results "$RESULTS" --id "remote-$name-files-stream" --kind info \
            --scenario "context: the same hit against the transfer alone (no files written)" --target "—" \
            --idem idem --peer stream --peer-label "$tool of the same bytes into one stream" "$JSON"/remote-"$name"-files.*.json
    fi
    # Context for the upload: the same miss with no remote (what idem does before it
    # can upload: the blob's name is its hash), and a peer that also keeps the output
    # (`cat > file`, no hashing) before uploading it.
    local CL="$WORK/cache-local-$name" kept="$WORK/up-capture.bin"
    local up_inner=${up_peer#sh -c \'}
    up_inner=${up_inner%\'}
    local capture_up="sh -c 'cat $ROUT > $kept && ${up_inner//$ROUT/$kept}'"
    (cd "$WORK" && measure "remote-$name-up" "${SLOW[*]}" \
        idem "sh -c 'rm -rf $C && $clear'" "$IDEM run --cache-dir $C --remote $url -- cat $ROUT" \
        raw "$up_prep" "$up_peer" \
        local "rm -rf $CL" "$IDEM run --cache-dir $CL -- cat $ROUT" \
        capture "sh -c 'rm -f $kept && $up_prep'" "$capture_up")
    python3 "$LIB" ratio --results "$RESULTS" --id "remote-$name-up" --kind ratio --max 1.5 \
        --scenario "$name upload: miss recording $((REMOTE_BYTES / MB)) MB of stdout" --target "≤ 1.5" \
        --idem idem --peer raw --peer-label "$tool upload of the same bytes" \
        --note "idem also runs the command, captures, hashes and stores locally" "$JSON"/remote-"$name"-up.*.json
    python3 "$LIB" ratio --results "$RESULTS" --id "remote-$name-up-local" --kind info \
        --scenario "context: the same miss without a remote, against the raw upload" --target "—" \
        --idem local --peer raw --peer-label "$tool upload of the same bytes" \
        --note "what idem must do before its upload can start (the blob's name is its hash)" "$JSON"/remote-"$name"-up.*.json
    python3 "$LIB" ratio --results "$RESULTS" --id "remote-$name-up-capture" --kind info \
        --scenario "context: the same upload against keeping the output, then uploading it" --target "—" \
        --idem idem --peer capture --peer-label "cat big > file && $tool upload of file" "$JSON"/remote-"$name"-up.*.json
    rm -rf "$C" "$CL" "$kept"
    sh -c "$(trash_sh "$O" "$WORK/raw-files")"
}

if want remote; then
    ROUT="$WORK/remote.bin"
    python3 "$LIB" gen-file "$ROUT" "$REMOTE_BYTES"
    mkdir -p "$WORK/remote-src"
    python3 "$LIB" gen-tree "$WORK/remote-src" "$REMOTE_FILES" "$((REMOTE_FILES * 10240))" >/dev/null
    PIDS=()
    if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
        say "scenario: remote hits and upload through Redis"
        RP=$(free_port)
        redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
            >"$WORK/redis.log" 2>&1 &
        PIDS+=($!)
        wait_port "$RP"
        RC="redis-cli -p $RP"
        $RC -x SET bench:raw <"$ROUT" >/dev/null
        # The raw peer of the file tree: one pipelined redis-cli reading every file.
        (cd "$WORK/remote-src" && find . -type f | sort) | while read -r f; do
            $RC -x SET "bench:f:$f" <"$WORK/remote-src/$f" >/dev/null
            echo "GET bench:f:$f"
        done >"$WORK/redis-gets"
        # redis-cli reads them in one process over one connection (one round trip per
        # GET: that is how redis-cli runs commands from stdin) into one stream; it cannot
        # write a file per value, so `cp -r` then writes the same 1,000 files, as any
        # client that restores them must. The stream alone is a context row.
        remote_rows redis redis-cli "redis://127.0.0.1:$RP/0" "$RC --raw GET bench:raw" \
            "sh -c '$RC -x SET bench:up < $ROUT'" "$RC DEL bench:up" \
            "$RC --scan --pattern idem:* | xargs -r $RC DEL >/dev/null" \
            "sh -c '$RC --raw < $WORK/redis-gets > $WORK/raw-files/all && cp -r $WORK/remote-src $WORK/raw-files/tree'" \
            "sh -c '$RC --raw < $WORK/redis-gets > $WORK/raw-files/all'"
    else
        say "warning: redis-server/redis-cli not installed: Redis rows skipped"
    fi
    if command -v nginx >/dev/null && command -v curl >/dev/null; then
        say "scenario: remote hits and upload through HTTP (nginx WebDAV)"
        NG="$WORK/nginx"
        mkdir -p "$NG/www/raw"
        NP=$(free_port)
        cat >"$NG/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
pid $NG/nginx.pid;
error_log $NG/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $NG/body;
  proxy_temp_path $NG/proxy;
  fastcgi_temp_path $NG/fastcgi;
  uwsgi_temp_path $NG/uwsgi;
  scgi_temp_path $NG/scgi;
  server {
    listen 127.0.0.1:$NP;
    root $NG/www;
    client_max_body_size 0;
    location / { dav_methods PUT DELETE; create_full_put_path on; dav_access user:rw; }
  }
}
NGINX
        nginx -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log" >"$NG/out.log" 2>&1 &
        PIDS+=($!)
        wait_port "$NP"
        H="http://127.0.0.1:$NP"
        cp "$ROUT" "$NG/www/raw/remote.bin"
        cp -r "$WORK/remote-src" "$NG/www/raw/src"
        # The raw peer of the file tree: one curl, one connection, every file to disk
        # (`curl -Z --parallel-max 8`, idem's concurrency, was not faster here).
        (cd "$WORK/remote-src" && find . -type f | sort) | while read -r f; do
            printf 'url = "%s/raw/src/%s"\noutput = "%s/raw-files/%s"\n' "$H" "${f#./}" "$WORK" "${f#./}"
        done >"$WORK/curl-files"
        remote_rows http curl "$H/cache/" "curl -s -o $WORK/raw.out $H/raw/remote.bin" \
            "curl -s -T $ROUT $H/raw/up.bin" "rm -f $NG/www/raw/up.bin" \
            "rm -rf $NG/www/cache" \
            "curl -s --create-dirs -K $WORK/curl-files"
    else
        say "warning: nginx or curl not installed: HTTP rows skipped"
    fi
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK/remote-src" "$ROUT"
fi

# ======================================================================== 8. trace
# `idem run --trace` (docs/trace.md): (a) a cold build of Lua 5.4 (the sources of the
# lua-src crate, fetched with cargo) with every compile wrapped in `idem run --trace`
# against the same build unwrapped, plus the syscall stops per compile; (b) the traced
# hit of one real compile against an untraced hit of the same command declaring the
# same files with -f, and against an empty hit. Needs gcc, make, ar.
if want trace; then
    for tool in gcc make ar; do
        command -v "$tool" >/dev/null || die "$tool is needed for the trace scenarios"
    done
    say "fixture: Lua 5.4 sources from the lua-src crate (cargo fetch)"
    LF="$WORK/lua-fetch"
    mkdir -p "$LF"
    cat >"$LF/Cargo.toml" <<'TOML'
[package]
name = "idem-bench-lua-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
path = "lib.rs"

[dependencies]
lua-src = "=547.1.0"
TOML
    : >"$LF/lib.rs"
    (cd "$LF" && cargo fetch --quiet) >&2 || die "cargo fetch of lua-src failed (crates.io reachable?)"
    lua_manifest=$(cd "$LF" && cargo metadata --format-version 1 --quiet |
        python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "lua-src"))')
    lua_dir=$(ls -d "$(dirname "$lua_manifest")"/lua-5.4.*)
    [[ -f "$lua_dir/lvm.c" ]] || die "no Lua 5.4 sources in $lua_dir"
    LUA="$WORK/lua"
    mkdir -p "$LUA"
    cp "$lua_dir"/*.c "$lua_dir"/*.h "$LUA/"
    lua_units=$(ls "$LUA"/*.c | wc -l)
    # The build: every .c to an object, then a static library. WRAP prefixes each compile.
    cat >"$LUA/Makefile" <<MAKE
CC = gcc
CFLAGS = $LUA_CFLAGS
WRAP =
OBJS = \$(patsubst %.c,%.o,\$(wildcard *.c))
liblua.a: \$(OBJS)
	ar rcs \$@ \$(OBJS)
%.o: %.c
	\$(WRAP) \$(CC) \$(CFLAGS) -c \$< -o \$@
clean:
	rm -f \$(OBJS) liblua.a
MAKE
    TC="$WORK/cache-trace-build"
    wrap="WRAP=$IDEM run --trace --cache-dir $TC --root $LUA --"
    # Both builds must work (and the traced one must record) before they are timed.
    make -s -C "$LUA" clean && make -s -j2 -C "$LUA" >/dev/null || die "the plain Lua build failed"
    make -s -C "$LUA" clean
    # -v: each compile says "traced: N syscall stops, M paths".
    make -s -j2 -C "$LUA" "WRAP=$IDEM run -v --trace --cache-dir $TC --root $LUA --" >/dev/null 2>"$WORK/trace-build.err" ||
        die "the traced Lua build failed: $(tail -n 5 "$WORK/trace-build.err")"
    [[ -f "$LUA/liblua.a" ]] || die "the traced Lua build made no liblua.a"
    read -r stops stopped_units < <(awk '/traced: [0-9]+ syscall stops/ {
        for (i = 1; i <= NF; i++) if ($i == "syscall") { s += $(i - 1); n++ } }
        END { printf "%d %d\n", n ? s / n : 0, n }' "$WORK/trace-build.err")
    ((stopped_units == lua_units)) || say "warning: idem -v reported stops for $stopped_units of $lua_units compiles"
    make -s -C "$LUA" clean
    err=$(make -s -j2 -C "$LUA" "WRAP=$IDEM run -v --trace --cache-dir $TC --root $LUA --" 2>&1 >/dev/null) ||
        die "the traced Lua rebuild failed: $err"
    # Counted as "hit (" and not by line: under make -j2 two idem processes' -v lines can
    # interleave on the shared stderr (each line takes more than one write).
    lua_hits=$(grep -o "hit (" <<<"$err" | wc -l)
    if ((lua_hits != lua_units)); then
        say "warning: after make clean only $lua_hits of $lua_units objects were replayed; the misses:"
        grep "miss" <<<"$err" >&2 || true
    fi

    say "scenario: cold Lua build, every compile under idem run --trace (vs plain make -j2)"
    (cd "$WORK" && measure trace-build "${SLOW[*]}" \
        traced "sh -c 'make -s -C $LUA clean && rm -rf $TC'" "make -s -j2 -C $LUA '$wrap'" \
        plain "make -s -C $LUA clean" "make -s -j2 -C $LUA" \
        rebuild "make -s -C $LUA clean" "make -s -j2 -C $LUA '$wrap'")

    python3 "$LIB" ratio --results "$RESULTS" --id trace-build --kind ratio --max 1.5 \
        --scenario "cold build of Lua 5.4 ($lua_units compiles, make -j2, ${LUA_CFLAGS%% *}), every compile under \`idem run --trace\`" \
        --target "≤ 1.5" --idem traced --peer plain --peer-label "the same make -j2 unwrapped" \
        --note "$stops syscall stops per compile (mean of $stopped_units, from idem -v); includes recording every object" \
        "$JSON"/trace-build.*.json
    python3 "$LIB" ratio --results "$RESULTS" --id trace-rebuild --kind info \
        --scenario "context: traced rebuild after make clean (every object replayed)" --target "—" \
        --idem rebuild --peer plain --peer-label "the cold make -j2 unwrapped" \
        --note "$lua_hits of $lua_units compiles replayed before measuring" "$JSON"/trace-build.*.json

    say "scenario: traced hit of one gcc compile (vs untraced hit declaring the same files, vs an empty hit)"
    HS="$WORK/trace-hit"
    mkdir -p "$HS"
    cp "$LUA"/*.c "$LUA"/*.h "$HS/"
    # shellcheck disable=SC2206 # the flags are words
    unit=(gcc $LUA_CFLAGS -c lvm.c -o lvm.o)
    # The tracer alone (examples/trace, a debug build: what it reports does not depend on
    # the optimisation level) lists the compile's paths, for the untraced peer's -f.
    if [[ -z "${TRACER:-}" ]]; then
        (cd "$ROOT" && cargo build --quiet --example trace) >&2 || die "cargo build --example trace failed"
        TRACER="${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/trace"
    fi
    THC="$WORK/cache-trace-hit" UHC="$WORK/cache-untraced-hit" EHC="$WORK/cache-empty-hit"
    traced_hit=("$IDEM" run --trace --cache-dir "$THC" --root "$HS" -- "${unit[@]}")
    # A traced record converges in at most two runs: the first one saw lvm.o absent.
    for _ in 1 2 3; do
        (cd "$HS" && "${traced_hit[@]:0:2}" -v "${traced_hit[@]:2}" 2>&1 >/dev/null) | grep -q "idem: hit" && break
    done
    assert_hit "$HS" --trace --cache-dir "$THC" --root "$HS" -- "${unit[@]}"
    # The same compile's existing input files (read, probed, executed), for -f.
    (cd "$HS" && "$TRACER" --summary "$WORK/hit-summary.txt" -- "${unit[@]}") || die "tracing lvm.c failed"
    mapfile -t declared < <(python3 - "$WORK/hit-summary.txt" <<'PY'
import ast, os, re, sys
for line in open(sys.argv[1]):
    m = re.match(r'path (".*") inputs=(0x[0-9a-f]+) writes=(0x[0-9a-f]+)$', line.strip())
    if not m:
        continue
    path, inputs, writes = ast.literal_eval(m[1]), int(m[2], 16), int(m[3], 16)
    # READ | PROBE | PROBE_NOFOLLOW | EXEC | LINK, never written, a file now (links followed)
    if inputs & 0x67 and not writes and os.path.isfile(path):
        print(path)
PY
    )
    entries=$(grep -c '^path ' "$WORK/hit-summary.txt")
    specs=()
    for f in "${declared[@]}"; do specs+=(-f "$f"); done
    untraced_hit=("$IDEM" run --cache-dir "$UHC" --root "$HS" "${specs[@]}" -o lvm.o -- "${unit[@]}")
    (cd "$HS" && "${untraced_hit[@]}" >/dev/null 2>&1) || die "the untraced compile failed"
    assert_hit "$HS" --cache-dir "$UHC" --root "$HS" "${specs[@]}" -o lvm.o -- "${unit[@]}"
    "$IDEM" run --cache-dir "$EHC" -- true
    assert_hit "$HS" --cache-dir "$EHC" -- true
    (cd "$HS" && measure trace-hit "${FAST[*]}" \
        traced true "${traced_hit[*]}" \
        untraced true "${untraced_hit[*]}" \
        empty true "$IDEM run --cache-dir $EHC -- true")
    python3 "$LIB" ratio --results "$RESULTS" --id trace-hit --kind ratio --max 1.3 \
        --scenario "traced hit, one gcc compile (lvm.c: $entries traced paths)" --target "≤ 1.3" \
        --idem traced --peer untraced --peer-label "untraced hit, the ${#declared[@]} existing files as -f" \
        --note "both restore lvm.o; the untraced hit cannot declare the absent paths the traced one checks" \
        "$JSON"/trace-hit.*.json
    python3 "$LIB" ratio --results "$RESULTS" --id trace-hit-empty --kind overhead --max 2.0 \
        --scenario "same traced hit over an empty hit" --target "≤ +2 ms" \
        --idem traced --peer empty --peer-label "idem run -- true" "$JSON"/trace-hit.*.json
    rm -rf "$LUA" "$HS" "$TC" "$THC" "$UHC" "$EHC"
fi

# -------------------------------------------------------------------------- report
peers="hyperfine $hf_version"
have bkt && peers+=", $(bkt --version 2>/dev/null | head -n1)"
have b3sum && peers+=", $(b3sum --version | head -n1)"
peers+=", $(git --version)"
if [[ -n "$IDEM_GIVEN" ]]; then
    rev="binary $IDEM"
else
    rev=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -n $(cd "$ROOT" && git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
        rev+=" (+ uncommitted changes)"
    fi
fi
meta=$(python3 -c 'import json,sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' \
    mode "$MODE" date "$(date -u '+%Y-%m-%d %H:%M UTC')" host "$(uname -srm)" cpus "$(nproc)" load "$LOAD" \
    idem "$(cd "$ROOT" && "$IDEM" --version 2>/dev/null | head -n1) @ $rev" peers "$peers" \
    fixtures "tree $TREE_FILES files / $((TREE_BYTES / MB)) MB, big file $((BIG_BYTES / MB)) MB, replay-memory $((MEM_BYTES / MB)) MB, records $RECORDS_MANY vs $RECORDS_FEW, $CONCURRENT concurrent misses" \
    method "hyperfine -N; fast/medium/slow scenarios: rounds×runs(+warmup) = ${FAST[0]}×${FAST[1]}(+${FAST[2]}) / ${MEDIUM[0]}×${MEDIUM[1]}(+${MEDIUM[2]}) / ${SLOW[0]}×${SLOW[1]}(+${SLOW[2]}), command order rotated every round; files in page cache")
mkdir -p "$(dirname "$OUT")"
python3 "$LIB" table "$RESULTS" "$OUT" "$WORK/fails" --meta "$meta"
fails=$(cat "$WORK/fails")
say "wrote $OUT"
if ((fails > 0)); then
    if ((QUICK)); then
        say "$fails target(s) missed; --quick only proves the suite runs, so this is not a failure"
    elif ((STRICT)); then
        die "$fails target(s) missed (--strict)"
    else
        say "$fails target(s) missed (see docs/benchmarks.md for the measured reasons)"
    fi
fi
exit 0
