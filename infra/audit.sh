#!/usr/bin/env bash
# RustSec advisories for every crate in Cargo.lock, with cargo-audit, offline.
#
#   infra/audit.sh
#
# The advisory database lives on GitHub, which CI cannot reach, so a snapshot of it is kept in
# infra/advisory-db/snapshot.tar.gz (see infra/advisory-db/README.md: its date, and how to
# refresh it). cargo-audit is installed from crates.io into .local/cargo-audit when missing.
# Fails on any vulnerability; unmaintained crates are listed as warnings. Fails too, before
# anything else, when the snapshot (its date in infra/advisory-db/SNAPSHOT_DATE) is older than
# 45 days: an old snapshot passes crates with advisories published since.
#
#   infra/audit.sh --age-only     only the snapshot's age (AUDIT_TODAY=YYYY-MM-DD sets "today")
#   infra/audit.sh --stale-ok     a stale snapshot is a loud warning, and the audit still runs:
#                                 what infra/test does in CI, whose machines cannot reach GitHub
#                                 to refresh it (the newest snapshot reachable from CI's
#                                 machines is infra/advisory-db's; a person refreshes it)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
MAX_AGE_DAYS=45
SNAPSHOT_DATE="$(tr -d '[:space:]' < infra/advisory-db/SNAPSHOT_DATE)"
TODAY="${AUDIT_TODAY:-$(date -u +%Y-%m-%d)}"
AGE_DAYS=$(( ( $(date -u -d "$TODAY" +%s) - $(date -u -d "$SNAPSHOT_DATE" +%s) ) / 86400 ))
if [ "$AGE_DAYS" -gt "$MAX_AGE_DAYS" ] && [ "${1:-}" = "--stale-ok" ]; then
    echo "infra/audit.sh: WARNING: the advisory snapshot is $AGE_DAYS days old (of $SNAPSHOT_DATE; at most $MAX_AGE_DAYS): advisories published since are not checked. Refresh it where GitHub can be reached (infra/advisory-db/README.md)." >&2
elif [ "$AGE_DAYS" -gt "$MAX_AGE_DAYS" ]; then
    echo "infra/audit.sh: the advisory snapshot is $AGE_DAYS days old (of $SNAPSHOT_DATE; at most $MAX_AGE_DAYS): refresh it where GitHub can be reached, as infra/advisory-db/README.md says (clone rustsec/advisory-db, tar it into infra/advisory-db/snapshot.tar.gz, write its date to infra/advisory-db/SNAPSHOT_DATE)" >&2
    exit 1
fi
if [ "${1:-}" = "--age-only" ]; then
    echo "infra/audit.sh: the advisory snapshot is $AGE_DAYS days old (of $SNAPSHOT_DATE)"
    exit 0
fi
VERSION=0.22.2
BIN="$ROOT/.local/cargo-audit/bin/cargo-audit"
if [ ! -x "$BIN" ] || ! "$BIN" --version | grep -q "$VERSION"; then
    echo "infra/audit.sh: installing cargo-audit $VERSION into .local/cargo-audit (a few minutes, once)"
    cargo install --quiet --locked cargo-audit --version "$VERSION" --root "$ROOT/.local/cargo-audit"
fi
DB="$ROOT/.local/advisory-db"
rm -rf "$DB" && mkdir -p "$DB"
tar -xzf infra/advisory-db/snapshot.tar.gz -C "$DB"
"$BIN" audit --db "$DB" --no-fetch
