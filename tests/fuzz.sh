#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for a bounded time: the OpenFlow decoder,
# packet extraction with header edits, one OpenFlow connection through the agent (message
# sequences, roles, bundles, split replies), the ovs-ofctl flow/group/meter syntax, and
# the config file parser. Stable toolchain: `cargo fuzz run -s none` (no sanitizer; the
# code under test has no unsafe outside crates/dpdk*, which no target reaches).
#
# Usage: tests/fuzz.sh [SECONDS]     (per target; default $FUZZ_SECONDS or 30)
# Env:   FUZZ_TARGETS="decode config"  only these targets
#        FUZZ_WORK=DIR   where the growing corpora and crash artifacts go
#                        (default target/fuzz-work; the seeds in the repo are only read)
# Each target starts from its seeds (seeds/<target> beside its fuzz_targets/) plus what
# earlier runs found in FUZZ_WORK, runs single-threaded under /tmp/cpu.lock and nice,
# and stops by itself after SECONDS. Exit 1 on any crash, with the input that caused
# it and the command that replays it; 2 on a setup error. Prints execs/s and coverage
# per target.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=${1:-${FUZZ_SECONDS:-30}}
WORK=${FUZZ_WORK:-$REPO/target/fuzz-work}
# One target directory for every fuzz crate: they share most dependencies.
TARGET_DIR=$REPO/target/fuzz
export CARGO_TARGET_DIR=$TARGET_DIR

ALL=(
    "crates/openflow/fuzz decode"
    "crates/packet/fuzz extract"
    "fuzz of_session"
    "fuzz flow_syntax"
    "fuzz config"
)

if ! command -v cargo-fuzz >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
    echo "fuzz: installing cargo-fuzz from crates.io" >&2
    nice -n 10 cargo install cargo-fuzz --locked >&2 || { echo "fuzz: cannot install cargo-fuzz" >&2; exit 2; }
fi
export PATH=$HOME/.cargo/bin:$PATH
command -v c++ >/dev/null || { echo "fuzz: libFuzzer needs a C++ compiler (apt-get install g++)" >&2; exit 2; }

failed=0
for entry in "${ALL[@]}"; do
    read -r dir target <<<"$entry"
    if [ -n "${FUZZ_TARGETS:-}" ] && ! [[ " $FUZZ_TARGETS " == *" $target "* ]]; then
        continue
    fi
    corpus=$WORK/corpus/$target
    artifacts=$WORK/artifacts/$target/
    seeds=$REPO/$dir/seeds/$target
    mkdir -p "$corpus" "$artifacts"
    [ -d "$seeds" ] || { echo "fuzz: no seeds for $target at $seeds" >&2; exit 2; }
    echo "== $target: build" >&2
    (cd "$REPO" && nice -n 10 cargo fuzz build -s none --fuzz-dir "$dir" "$target") >&2 \
        || { echo "fuzz: $target does not build" >&2; exit 2; }
    echo "== $target: ${SECONDS_EACH}s" >&2
    log=$WORK/$target.log
    rc=0
    (cd "$REPO" && flock /tmp/cpu.lock nice -n 10 cargo fuzz run -s none --fuzz-dir "$dir" \
        "$target" "$corpus" "$seeds" -- \
        -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts" -print_final_stats=1) >"$log" 2>&1 || rc=$?
    done_line=$(grep -E "^#[0-9]+[[:space:]]+DONE" "$log" | tail -1 || true)
    runs=$(grep -E "^stat::number_of_executed_units" "$log" | awk '{print $2}' || true)
    if [ "$rc" = 0 ]; then
        echo "FUZZ $target: ok, ${runs:-?} runs; ${done_line:-no DONE line}"
    else
        failed=1
        echo "!!! FUZZ $target: FAILED (exit $rc); the log is $log"
        grep -E "panicked|deadly signal|Test unit written|ERROR: libFuzzer" "$log" | head -20 || true
        for a in "$artifacts"*; do
            [ -e "$a" ] || continue
            echo "!!! replay: (cd $REPO && cargo fuzz run -s none --fuzz-dir $dir $target $a)"
        done
    fi
done
exit "$failed"
