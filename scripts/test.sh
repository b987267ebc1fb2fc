#!/usr/bin/env bash
# relocate's test command (the README names it; .ci/run calls it).
#
# On a fresh machine (Rust toolchain, python3 with venv/pip, node/npm, apt as root) it installs
# what the real-server tests need into locations that outlive the clone (see scripts/servers.sh:
# moto and Azurite under ${RELOCATE_TOOLS:-$HOME/.cache/relocate-tools}, s3s-fs in
# $CARGO_HOME/bin), then runs, in order:
#   0. Debian's chromium, when missing (the transparency report's rendering test)
#   1. cargo fmt --all --check
#   2. cargo clippy --workspace --all-targets -- -D warnings
#   3. start moto, s3s-fs and Azurite on free loopback ports (stopped by PID on exit)
#   4. cargo nextest run --workspace --no-fail-fast   (cargo test --workspace --no-fail-fast
#      when cargo-nextest is not installed)
# and prints how long each phase took. fmt and clippy findings do not stop the run (the tests
# still run, so one CI pass shows everything) but make it fail at the end. Any server that cannot
# be installed or started fails the run at once with its name and reason: real-server tests are
# never skipped.
#
# Extra arguments go to the test runner, e.g. `scripts/test.sh -E 'package(e2e)'` with nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/servers.sh
source scripts/servers.sh

PHASES=()
phase() {
    local name="$1" start rc=0
    shift
    echo "==> $name" >&2
    start=$SECONDS
    "$@" || rc=$?
    PHASES+=("$(printf '%-8s %4ds %s' "$name" $((SECONDS - start)) "$([[ $rc -eq 0 ]] && echo ok || echo "FAILED ($rc)")")")
    return "$rc"
}

report() {
    local rc=$?
    stop_servers
    if ((${#PHASES[@]})); then
        echo "==> phase timings" >&2
        printf '    %s\n' "${PHASES[@]}" >&2
    fi
    exit "$rc"
}
trap report EXIT

run_tests() {
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --workspace --no-fail-fast "$@"
    else
        echo "test.sh: cargo-nextest not found; using cargo test" >&2
        cargo test --workspace --no-fail-fast "$@"
    fi
}

# Headless Chromium renders the transparency report in its test (Debian's package).
install_chromium() {
    command -v chromium >/dev/null 2>&1 && return 0
    echo "test.sh: installing chromium (for the transparency report's rendering test)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null ||
        { echo "test.sh: cannot install chromium with apt-get (are you root?)" >&2; return 1; }
}

# The install runs first and in the foreground so a missing server fails fast, before the
# long compile; on a machine that has everything it takes well under a second.
FAILED=0
phase install install_servers
phase chromium install_chromium
phase fmt cargo fmt --all --check || FAILED=1
phase clippy cargo clippy --workspace --all-targets -- -D warnings || FAILED=1
phase servers start_servers
phase test run_tests "$@" || FAILED=1
if ((FAILED)); then
    echo "test.sh: FAILED (see the phases above)" >&2
    exit 1
fi
