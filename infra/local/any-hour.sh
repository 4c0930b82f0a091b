#!/usr/bin/env bash
# Shows that no test depends on the hour it runs at: runs every test of the workspace and the
# cargo lambda smoke test under a faked evening clock (21:15 UTC, 22:15 in Berlin: quiet hours in
# Europe) and a faked morning clock (07:30 UTC: quiet hours in the Americas), with libfaketime
# from Debian's package `faketime` (installed if missing).
#
#   infra/local/any-hour.sh            both clocks, the tests and the smoke test
#   infra/local/any-hour.sh --no-smoke both clocks, the tests only
#
# Needs the local stack's environment (infra/test runs this with CI=true after starting it).
# The wall clock moves on from the faked start; for the tests, monotonic time (timers, timeouts)
# is left real.
set -euo pipefail
cd "$(dirname "$0")/../.."

SMOKE=1
[ "${1:-}" = "--no-smoke" ] && SMOKE=0

if ! command -v faketime >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "[any-hour] installing faketime from Debian's packages" >&2
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq faketime >/dev/null
fi
: "${AWS_ENDPOINT_URL:?start the local stack and source its env file first}"

# Built under the real clock, so the faked one never meets cargo's fingerprints.
# Doc tests are left out: they read no clock, and rustdoc's compile step stalls under libfaketime.
cargo test --workspace --lib --bins --tests --no-run --quiet
for bin in scheduler sender webhook; do cargo build --quiet --bin "$bin"; done

today=$(date -u +%F)
for clock in "$today 21:15:00" "$today 07:30:00"; do
    echo "[any-hour] clock starts at $clock UTC" >&2
    FAKETIME_DONT_FAKE_MONOTONIC=1 faketime "$clock" date -u
    FAKETIME_DONT_FAKE_MONOTONIC=1 faketime "$clock" cargo test --workspace --lib --bins --tests --quiet
    if [ "$SMOKE" = 1 ]; then
        # Python's sleeps fail with a faked wall clock over a real monotonic one: fake both here.
        FAKETIME_DONT_FAKE_MONOTONIC=0 faketime "$clock" python infra/local/smoke.py
    fi
    echo "[any-hour] passed with the clock at $clock UTC" >&2
done
