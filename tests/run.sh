#!/usr/bin/env bash
# The test command: sets up the host, checks formatting and lints, builds, and
# runs every test (unit, property and the datapath tests with taps,
# namespaces, pcap/null/ring vdevs and vhost-user). Run as root on Debian 12.
#
# Datapath tests take /tmp/ferroflow-datapath.lock, so at most one busy-polling
# process runs at a time; each is bounded by --exit-after and timeout(1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tests/setup-host.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked "$@"
