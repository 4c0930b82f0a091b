#!/usr/bin/env bash
# RustSec advisories for every crate in Cargo.lock, with cargo-audit, offline.
#
#   infra/audit.sh
#
# The advisory database lives on GitHub, which CI cannot reach, so a snapshot of it is kept in
# infra/advisory-db/snapshot.tar.gz (see infra/advisory-db/README.md: its date, and how to
# refresh it). cargo-audit is installed from crates.io into .local/cargo-audit when missing.
# Fails on any vulnerability; unmaintained crates are listed as warnings.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
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
