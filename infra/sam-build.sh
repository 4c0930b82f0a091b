#!/usr/bin/env bash
# sam build of the four functions with cargo lambda, and a check of what it produced.
#
#   infra/sam-build.sh [x86_64|arm64]      (default x86_64; the template's default is arm64)
#
# Installs sam and cargo-lambda (with zig) into .local/venv if needed. Artifacts go to
# .aws-sam/build as with a plain `sam build`, so `sam deploy` can follow. A failure names its
# cause (missing Rust target, no registry access, compile error) instead of being skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
ARCH="${1:-x86_64}"
LOG="$ROOT/.local/sam-build.log"

say() { printf '[sam-build] %s\n' "$*" >&2; }
fail() {
    say "FAILED: $*"
    exit 1
}

case "$ARCH" in
    x86_64) RUST_TARGET=x86_64-unknown-linux-gnu ELF_MACHINE=62 ;;
    arm64) RUST_TARGET=aarch64-unknown-linux-gnu ELF_MACHINE=183 ;;
    *) fail "architecture must be x86_64 or arm64, not $ARCH" ;;
esac

infra/local/stack.sh install
export PATH="$ROOT/.local/venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0 SAM_CLI_DISABLE_VERSION_CHECK=1

# Preconditions, each with the reason it matters.
command -v cargo-lambda >/dev/null || fail "cargo-lambda is not in .local/venv (pip install cargo-lambda)"
cargo lambda --help >/dev/null 2>&1 || fail "'cargo lambda' does not run"
python -c "import ziglang" 2>/dev/null || fail "zig (PyPI package ziglang, which cargo lambda links with) is missing"
if ! rustc --print target-libdir --target "$RUST_TARGET" 2>/dev/null | xargs -I{} test -d {}; then
    if ! rustup target add "$RUST_TARGET" >&2; then
        fail "the Rust standard library for $RUST_TARGET is not installed and rustup could not download it
  (rustup's own download server is not one of the registries this machine reaches).
  Build with: infra/sam-build.sh x86_64, or run 'rustup target add $RUST_TARGET' where rustup is online."
    fi
fi

mkdir -p "$ROOT/.local"
say "sam build --parameter-overrides Architecture=$ARCH (cargo lambda, release; the first build takes several minutes)"
start=$SECONDS
if ! sam build --beta-features --parameter-overrides "Architecture=$ARCH" >"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    if grep -qiE "could not resolve host|failed to download|network|spurious|timed out" "$LOG"; then
        fail "sam build needs crates from crates.io (see $LOG): the registry was not reachable"
    elif grep -qiE "failed to parse manifest|failed to load manifest" "$LOG"; then
        fail "a Cargo.toml of the workspace is invalid (see $LOG)"
    elif grep -qiE "error\[E[0-9]+\]|could not compile|couldn't read" "$LOG"; then
        fail "the workspace does not compile for $RUST_TARGET (see $LOG)"
    elif grep -qiE "zig" "$LOG"; then
        fail "cargo lambda's zig linker failed (see $LOG)"
    else
        fail "sam build failed (see $LOG)"
    fi
fi

for fn in SchedulerFunction SenderFunction WebhookFunction ReportFunction; do
    bin=".aws-sam/build/$fn/bootstrap"
    [ -x "$bin" ] || fail "$bin missing after sam build"
    machine="$(python - "$bin" <<'EOF'
import struct, sys
with open(sys.argv[1], "rb") as f:
    head = f.read(20)
assert head[:4] == b"\x7fELF", "not an ELF binary"
print(struct.unpack("<H", head[18:20])[0])
EOF
)" || fail "$bin is not an ELF binary"
    [ "$machine" = "$ELF_MACHINE" ] || fail "$bin is built for ELF machine $machine, expected $ELF_MACHINE ($ARCH)"
    say "$bin ($ARCH, $(du -h "$bin" | cut -f1))"
done
say "built the four functions for $ARCH in $((SECONDS - start))s; template at .aws-sam/build/template.yaml"
