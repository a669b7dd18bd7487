#!/usr/bin/env bash
# scripts/test.sh — the one command that tests rootcast, on a developer's machine and in CI.
#
#   scripts/test.sh
#
# On a fresh Debian machine with Rust it first installs what the tests need (and says what
# it installs), then runs `cargo fmt --check`, `cargo clippy -D warnings` and the whole test
# suite, and exits non-zero if any of them fails. Run again, it installs nothing and goes
# straight to the checks.
#
# What it installs when missing:
#   - Debian packages (apt-get; as root, or through sudo): nodejs/npm when `node` is
#     missing, chromium (browser tests drive /usr/bin/chromium with playwright-core),
#     iproute2 (the relay's browser test makes a private network namespace with `ip netns`),
#     nftables (the relay's loss test drops packets with `nft` inside such a namespace),
#     janus (the load generator's whep-viewers test measures Janus beside rootcast),
#     python3-venv/python3-pip when python3 can't make a venv;
#   - npm packages from tests/package-lock.json into tests/node_modules (`npm ci`), again
#     only when the lockfile changed since the last install;
#   - PyPI packages from tests/requirements.txt into a venv at $HOME/.cache/rootcast-venv
#     (ROOTCAST_VENV overrides), again only when requirements.txt changed.
# It also checks that PostgreSQL (127.0.0.1:5432), Redis (127.0.0.1:6379) and NATS
# (127.0.0.1:4222) answer and starts those that don't. The store tests need PostgreSQL, so a
# service that is missing or won't start is an error; ROOTCAST_REQUIRE_SERVICES=0 makes it a
# warning (and the PostgreSQL tests then skip with a note) for a machine without them.
#
# Environment:
#   CARGO_TARGET_DIR            build folder; default $HOME/.cache/rootcast-target (outside
#                               the clone, so CI reuses the builds of earlier runs)
#   ROOTCAST_VENV               the tests' Python venv; default $HOME/.cache/rootcast-venv
#   ROOTCAST_SKIP_INSTALL=1     check nothing, install nothing; just run the checks
#   ROOTCAST_INSTALL_ONLY=1     install and start what the tests need, then stop
#   ROOTCAST_REQUIRE_SERVICES=0 a database/broker that doesn't answer is only a warning
# Exported for the tests:
#   ROOTCAST_TEST_NODE_MODULES  absolute path of tests/node_modules
#   ROOTCAST_TEST_PYTHON        the venv's python interpreter

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rootcast-target}"
VENV="${ROOTCAST_VENV:-$HOME/.cache/rootcast-venv}"
SKIP_INSTALL="${ROOTCAST_SKIP_INSTALL:-0}"
INSTALL_ONLY="${ROOTCAST_INSTALL_ONLY:-0}"
REQUIRE_SERVICES="${ROOTCAST_REQUIRE_SERVICES:-1}"
# This script's own settings go no further: `rootcast serve` rejects ROOTCAST_* variables
# that name no config key, and the tests start it with their environment.
unset ROOTCAST_VENV ROOTCAST_SKIP_INSTALL ROOTCAST_INSTALL_ONLY ROOTCAST_REQUIRE_SERVICES
# The tests read it back (tests that start the binary strip ROOTCAST_* from its environment).
export ROOTCAST_REQUIRE_SERVICES="$REQUIRE_SERVICES"
export ROOTCAST_TEST_NODE_MODULES="$ROOT/tests/node_modules"
export ROOTCAST_TEST_PYTHON="$VENV/bin/python"
# Test programs talk only to 127.0.0.1: a proxy from the environment must not get in the way.
export NO_PROXY="127.0.0.1,localhost,::1${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

# ---------------------------------------------------------------------------------------
# Output helpers and phase timing

if [ -t 1 ]; then BOLD=$'\e[1m'; RED=$'\e[31m'; YELLOW=$'\e[33m'; GREEN=$'\e[32m'; RESET=$'\e[0m'
else BOLD=''; RED=''; YELLOW=''; GREEN=''; RESET=''; fi

say() { printf '%s==> %s%s\n' "$BOLD" "$*" "$RESET"; }
warn() { printf '%swarning: %s%s\n' "$YELLOW" "$*" "$RESET" >&2; }
die() { printf '%serror: %s%s\n' "$RED" "$*" "$RESET" >&2; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

SCRIPT_START="$(now)"
PHASES=()   # "name|seconds|status"
FAILED=()

# run_phase NAME CMD...: runs CMD, prints its duration, records a failure without stopping.
run_phase() {
    local name="$1"; shift
    local start status secs
    say "$name: $*"
    start="$(now)"
    "$@"
    status=$?
    secs="$(elapsed "$start")"
    if [ "$status" -eq 0 ]; then
        say "$name: ok (${secs}s)"
        PHASES+=("$name|$secs|ok")
    else
        printf '%s==> %s: FAILED with exit status %s (%ss)%s\n' "$RED" "$name" "$status" "$secs" "$RESET"
        PHASES+=("$name|$secs|FAILED")
        FAILED+=("$name")
    fi
    return "$status"
}

# ---------------------------------------------------------------------------------------
# Installing

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
fi

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        die "these Debian packages are needed but there is no apt-get here: $*; install them and run again"
    if [ "$(id -u)" -ne 0 ] && [ ${#SUDO[@]} -eq 0 ]; then
        die "these Debian packages are needed: $*; run as root, install sudo, or install them and run again"
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
            die "apt-get update failed"
        APT_UPDATED=1
    fi
    say "installing Debian packages: $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" </dev/null ||
        die "apt-get install $* failed"
}

# The hash of the files' contents (not their paths: CI clones into a new folder each run).
sha256_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# The first of python3 (PATH) and Debian's /usr/bin/python3 that can make a venv with pip.
venv_python() {
    local p
    for p in "$(command -v python3 2>/dev/null)" /usr/bin/python3; do
        if [ -n "$p" ] && [ -x "$p" ] && "$p" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

install_system_packages() {
    local pkgs=()
    if ! command -v node >/dev/null 2>&1; then
        pkgs+=(nodejs)
        command -v npm >/dev/null 2>&1 || pkgs+=(npm)
    elif ! command -v npm >/dev/null 2>&1; then
        pkgs+=(npm)
    fi
    if [ ! -x /usr/bin/chromium ]; then
        pkgs+=(chromium)
    fi
    # The relay's browser test runs Chromium and the server in a private network namespace.
    if ! command -v ip >/dev/null 2>&1; then
        pkgs+=(iproute2)
    fi
    # The relay's loss test drops packets with an nftables rule inside its namespace.
    if ! command -v nft >/dev/null 2>&1 && [ ! -x /usr/sbin/nft ]; then
        pkgs+=(nftables)
    fi
    # The load generator's whep-viewers test runs Janus (VideoRoom) beside rootcast.
    if ! command -v janus >/dev/null 2>&1; then
        pkgs+=(janus)
    fi
    if ! venv_python >/dev/null; then
        pkgs+=(python3 python3-venv python3-pip)
    fi
    if [ ${#pkgs[@]} -gt 0 ]; then
        apt_install "${pkgs[@]}"
    fi
    local node_major
    node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    if [ "$node_major" -lt 20 ]; then
        # Debian 12's nodejs is 18: centrifuge-js and cent.js work there, playwright-core
        # (the browser tests) wants 20 or later (Debian 13's nodejs, or NodeSource's).
        warn "node $(node --version 2>/dev/null) is older than 20: the browser tests (playwright-core) may fail; install Node.js 20 or later"
    fi
    local python
    python="$(venv_python)" || die "no python3 that can make a venv, even after installing python3-venv"
    say "have node $(node --version), npm $(npm --version), $python ($("$python" --version 2>&1)), $(/usr/bin/chromium --version 2>/dev/null || echo 'no chromium')"
}

install_npm_packages() {
    local dir="$ROOT/tests" stamp want
    [ -f "$dir/package-lock.json" ] || die "tests/package-lock.json is missing"
    stamp="$dir/node_modules/.rootcast-lock.sha256"
    want="$(sha256_of "$dir/package.json" "$dir/package-lock.json") $(node --version)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say "npm packages in tests/node_modules are up to date"
        return 0
    fi
    say "installing npm packages from tests/package-lock.json into tests/node_modules (npm ci)"
    # --ignore-scripts: no package we use needs an install script, and none may download.
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund) || die "npm ci failed"
    printf '%s\n' "$want" >"$stamp"
}

install_python_packages() {
    local req="$ROOT/tests/requirements.txt" stamp want
    [ -f "$req" ] || die "tests/requirements.txt is missing"
    if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        warn "the venv at $VENV is broken (its python doesn't start); making it anew"
        rm -rf "$VENV"
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        local python
        python="$(venv_python)" || die "no python3 that can make a venv (install python3-venv)"
        say "creating the Python venv $VENV with $python"
        mkdir -p "$(dirname "$VENV")"
        "$python" -m venv "$VENV" || die "$python -m venv $VENV failed"
    fi
    stamp="$VENV/.rootcast-requirements.sha256"
    want="$(sha256_of "$req") $("$VENV/bin/python" --version 2>&1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say "Python packages in $VENV are up to date"
        return 0
    fi
    say "installing PyPI packages from tests/requirements.txt into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$req" ||
        die "pip install -r tests/requirements.txt failed"
    printf '%s\n' "$want" >"$stamp"
}

# ---------------------------------------------------------------------------------------
# Services: PostgreSQL, Redis, NATS

tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" >/dev/null 2>&1; }

pg_answers() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h 127.0.0.1 -p 5432 -t 2
    else
        tcp_open 5432
    fi
}
redis_answers() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(timeout 3 redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]
    else
        tcp_open 6379
    fi
}
# A NATS server greets every connection with an INFO line.
nats_answers() {
    timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/4222 && head -c 4 <&3' 2>/dev/null | grep -q '^INFO'
}

SERVICE_PROBLEMS=0
service_problem() {
    if [ "$REQUIRE_SERVICES" = "1" ]; then
        printf '%serror: %s%s\n' "$RED" "$*" "$RESET" >&2
    else
        warn "$* (ROOTCAST_REQUIRE_SERVICES=0: the tests that need it will skip)"
    fi
    SERVICE_PROBLEMS=$((SERVICE_PROBLEMS + 1))
}

wait_for() { # wait_for CHECK SECONDS
    local i
    for ((i = 0; i < $2 * 4; i++)); do
        "$1" && return 0
        sleep 0.25
    done
    return 1
}

ensure_postgres() {
    if pg_answers; then say "PostgreSQL answers on 127.0.0.1:5432"; return; fi
    local versions
    versions="$(ls /etc/postgresql 2>/dev/null)"
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$versions" ]; then
        service_problem "PostgreSQL doesn't answer on 127.0.0.1:5432 and isn't installed (no pg_ctlcluster or /etc/postgresql)"
        return
    fi
    say "starting PostgreSQL: pg_ctlcluster --skip-systemctl-redirect $versions main start"
    # shellcheck disable=SC2046
    "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start </dev/null ||
        warn "pg_ctlcluster exited non-zero"
    wait_for pg_answers 20 || service_problem "PostgreSQL still doesn't answer on 127.0.0.1:5432"
}

ensure_redis() {
    if redis_answers; then say "Redis answers on 127.0.0.1:6379"; return; fi
    if ! command -v redis-server >/dev/null 2>&1; then
        service_problem "Redis doesn't answer on 127.0.0.1:6379 and redis-server isn't installed"
        return
    fi
    say "starting Redis: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 ..."
    "${SUDO[@]}" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
        --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log </dev/null ||
        warn "redis-server exited non-zero"
    wait_for redis_answers 15 || service_problem "Redis still doesn't answer on 127.0.0.1:6379"
}

ensure_nats() {
    if nats_answers; then say "NATS answers on 127.0.0.1:4222"; return; fi
    if [ ! -x /usr/sbin/nats-server ]; then
        service_problem "NATS doesn't answer on 127.0.0.1:4222 and /usr/sbin/nats-server isn't installed"
        return
    fi
    say "starting NATS: start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js ..."
    "${SUDO[@]}" start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log </dev/null ||
        warn "start-stop-daemon exited non-zero"
    wait_for nats_answers 15 || service_problem "NATS still doesn't answer on 127.0.0.1:4222"
}

ensure_services() {
    ensure_postgres
    ensure_redis
    ensure_nats
    if [ "$SERVICE_PROBLEMS" -gt 0 ] && [ "$REQUIRE_SERVICES" = "1" ]; then
        return 1
    fi
    return 0
}

# ---------------------------------------------------------------------------------------
# The checks

TEST_LOG="$(mktemp "${TMPDIR:-/tmp}/rootcast-tests.XXXXXX")"
trap 'rm -f "$TEST_LOG"' EXIT

# Runs the whole suite (and, with nextest, the doctests after it), copying the output to
# $TEST_LOG for the count at the end.
run_tests() {
    local color=never status=0
    [ -t 1 ] && color=always
    : >"$TEST_LOG"
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --workspace --no-fail-fast --color "$color" 2>&1 | tee -a "$TEST_LOG"
        status=${PIPESTATUS[0]}
        # nextest doesn't run doctests.
        cargo test --workspace --doc --color "$color" 2>&1 | tee -a "$TEST_LOG"
        [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    else
        cargo test --workspace --no-fail-fast --color "$color" 2>&1 | tee -a "$TEST_LOG"
        status=${PIPESTATUS[0]}
    fi
    return "$status"
}

# "P passed, F failed, S skipped" over nextest's summary and libtest's result lines
# (unindented ones: nextest indents the output of the tests it shows).
count_tests() {
    sed 's/\x1b\[[0-9;]*m//g' "$TEST_LOG" | awk '
        /^ *Summary \[/ {
            for (i = 2; i <= NF; i++) {
                if ($i ~ /^passed,?$/) p += $(i - 1)
                if ($i ~ /^failed,?$/) f += $(i - 1)
                if ($i ~ /^timed$/) f += $(i - 1)
                if ($i ~ /^skipped,?$/) s += $(i - 1)
            }
        }
        /^test result:/ {
            for (i = 2; i <= NF; i++) {
                if ($i ~ /^passed;/) p += $(i - 1)
                if ($i ~ /^failed;/) f += $(i - 1)
                if ($i ~ /^ignored;/) s += $(i - 1)
            }
        }
        END { printf "%d passed, %d failed, %d skipped\n", p, f, s }'
}

main() {
    say "rootcast tests in $ROOT (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs) first"

    if [ "$SKIP_INSTALL" != "1" ]; then
        run_phase "system packages" install_system_packages || exit 1
        run_phase "npm packages" install_npm_packages || exit 1
        run_phase "python packages" install_python_packages || exit 1
        run_phase "services" ensure_services || exit 1
    fi
    if [ "$INSTALL_ONLY" = "1" ]; then
        say "everything the tests need is installed ($(elapsed "$SCRIPT_START")s)"
        return 0
    fi

    run_phase "cargo fmt" cargo fmt --all -- --check
    run_phase "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
    run_phase "tests" run_tests

    echo
    say "timings"
    local p
    for p in "${PHASES[@]}"; do
        IFS='|' read -r name secs status <<<"$p"
        printf '    %-18s %8ss  %s\n' "$name" "$secs" "$status"
    done
    printf '    %-18s %8ss\n' "total" "$(elapsed "$SCRIPT_START")"
    if [ ${#FAILED[@]} -gt 0 ]; then
        printf '%s==> FAILED: %s%s\n' "$RED" "$(IFS=,; echo "${FAILED[*]}" | sed 's/,/, /g')" "$RESET"
    else
        printf '%s==> all checks passed%s\n' "$GREEN" "$RESET"
    fi
    # The closing line: the tests counted over the whole run.
    echo "tests: $(count_tests)"
    [ ${#FAILED[@]} -eq 0 ] || exit 1
}

main "$@"
