#!/usr/bin/env bash
# The test command: sets up the host, checks formatting and lints, builds, and
# runs every test (unit, property and the datapath tests with taps,
# namespaces, pcap/null/ring vdevs and vhost-user). Run as root on Debian 12.
#
# Datapath tests take /tmp/cpu.lock, so at most one busy-polling
# process runs at a time; each is bounded by --exit-after and timeout(1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tests/setup-host.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked --features ferroflow/deadlock-detection -- -D warnings
echo "== instructions per packet (perf/icount.sh: printed, never asserted)"
bash perf/icount.sh
echo "== fuzz (tests/fuzz.sh: every target ${FUZZ_SECONDS:-30} s)"
fuzz_status=0
bash tests/fuzz.sh || fuzz_status=1
echo "== cargo test"
# ferroflowctl is a package of its own (it builds without DPDK): built here once,
# the tests then find it up to date.
cargo build --locked -p ferroflowctl --bin ferroflowctl
log=$(mktemp /tmp/ferroflow-test.XXXXXX)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast --features ferroflow/deadlock-detection "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary, the
# last often a crate's empty doc-tests).
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
[ "$fuzz_status" = 0 ] || { echo "fuzz: a target crashed (see above)"; status=1; }
exit "$status"
