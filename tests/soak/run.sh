#!/usr/bin/env bash
# The soak and fault suite (tests/soak.rs), long versions by default:
#   bash tests/soak/run.sh              # every scenario, long (about 45 min: the guest
#                                       # resets alone take 15)
#   bash tests/soak/run.sh flow_mod     # the scenarios whose name contains "flow_mod"
#   FERROFLOW_SOAK=short bash tests/soak/run.sh   # the CI version (about 3 min)
#   FERROFLOW_SOAK_GUEST_MINUTES=60 bash tests/soak/run.sh guest_resets   # 300 resets (about 37 min)
# Each scenario prints one "SOAK ..." figure line; all of them are repeated at
# the end. A scenario fails (and this script exits non-zero) when something is
# lost (a failed call or restart, a crash, a dropped packet, fd/RSS growth past
# its stated bound), never on speed. Each scenario holds /tmp/cpu.lock while it
# runs (its ferroflowd busy-polls) and stops its processes by PID; the long guest
# resets do not (their ferroflowd sleeps when idle, and they last over half an
# hour). Run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
export FERROFLOW_SOAK="${FERROFLOW_SOAK:-long}"
figures=$(mktemp /tmp/ferroflow-soak.XXXXXX)
trap 'rm -f "$figures"' EXIT
export FERROFLOW_SOAK_FIGURES="$figures"
cargo build --locked -p ferroflowctl --bin ferroflowctl
# The test binary runs on its own (not under cargo, which would hold the build
# directory's lock for the whole run).
bin=$(cargo test --locked --test soak --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "soak" and m.get("executable"):
        print(m["executable"])')
[ -x "$bin" ] || { echo "soak: the test binary did not build: cargo test --test soak --no-run" >&2; exit 2; }
status=0
"$bin" --test-threads=1 --nocapture "$@" || status=$?
echo "== soak figures ($FERROFLOW_SOAK, commit $(git rev-parse --short HEAD))"
cat "$figures"
exit "$status"
