#!/usr/bin/env bash
# relocate vs rclone on the same data, in one invocation (method: README, "Benchmarks").
#
# usage: e2e/bench/run.sh [--quick] [--runs N] [--sets LIST] [--no-s3]
#   --quick      smaller data sets (a minute or two instead of much longer)
#   --runs N     alternations per data set (default 3); relocate and rclone take turns
#   --sets LIST  comma-separated subset of: many-1m, small, large, s3   (default: all)
#   --no-s3      leave out the S3 → S3 case
# env: BENCH_DIR (default /tmp/relocate-bench) holds the generated data (kept between runs,
#      regenerated only when its parameters change) and the scratch targets.
#
# Data sets (deterministic, seeded):   full                       --quick
#   many-1m   1 MiB objects             2,000                      200
#   small     1–256 KiB, log-uniform    20,000                     2,000
#   large     256 MiB objects           8                          2 × 64 MiB
#   s3        many-1m, S3 → S3 on a loopback s3s-fs (scripts/servers.sh), two buckets
#
# On local sets every run writes into a new directory, emptied (not removed) once measured;
# targets are removed when the set ends, and the next set waits up to 361 s: ext4 without a
# journal skips inodes freed in the last 60–360 s, and a run right after a removal paid
# for it whichever tool it was (see bench.py, `RECENTCY`).
# Each run starts from the same memory state: after `sync` (no writeback pending from the
# run before) and, as root, with the page cache dropped and refilled with the source and
# the tools' own programs (every tool meets the source and its binary cached, and the same
# free memory). Each run is measured
# with /usr/bin/time -v (wall time, peak RSS):
#   relocate: `relocate run PLAN --state-dir FRESH --output json` with a generated plan of one
#             stage `[ { copy: w }, { verify: w } ]` (no sign-off, `checksum: sha256`, the
#             default); binary from `cargo build --release -p orchestrator`
#   relocate-b3: the same with `checksum: blake3` (local sets)
#   rclone:   `rclone copy SRC DST --transfers 16 --checkers 16` then `rclone check SRC DST
#             --download` (wall = sum, RSS = max of the two)
#   cp -r:    the floor on local sets (a plain copy: no hash, no verify)
# Printed: per data set and tool the median, min and max wall time, peak RSS, MB/s and objects/s,
# the ratio rclone/relocate of the median wall times (>1: relocate is faster), and on local
# sets the ratio relocate/cp -r.
# Installs rclone and GNU time with apt-get when missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

QUICK=0 RUNS=3 SETS="many-1m,small,large,s3"
while (($#)); do
    case "$1" in
        --quick) QUICK=1 ;;
        --runs) RUNS="$2"; shift ;;
        --sets) SETS="$2"; shift ;;
        --no-s3) SETS="${SETS//,s3/}"; SETS="${SETS//s3,/}" ;;
        -h | --help) sed -n '2,35p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
BENCH_DIR="${BENCH_DIR:-/tmp/relocate-bench}"
mkdir -p "$BENCH_DIR"

need_apt() {
    local cmd="$1" pkg="$2"
    if ! command -v "$cmd" >/dev/null && [[ ! -x "$cmd" ]]; then
        echo "run.sh: installing $pkg with apt-get" >&2
        { apt-get update -qq && apt-get install -y -qq "$pkg"; } >/dev/null ||
            { echo "run.sh: cannot install $pkg (apt-get failed; are you root?)" >&2; exit 1; }
    fi
}
need_apt rclone rclone
need_apt /usr/bin/time time

if [[ -z "${RELOCATE_BIN:-}" ]]; then
    echo "run.sh: building relocate (release)" >&2
    cargo build --release -p orchestrator >&2
    RELOCATE_BIN="$ROOT/target/release/relocate"
fi
[[ -x "$RELOCATE_BIN" ]] || { echo "run.sh: $RELOCATE_BIN is missing" >&2; exit 1; }
export RELOCATE_BIN

# name count min max seed (quick and full parameters)
dataset_params() {
    case "$1:$QUICK" in
        many-1m:0) echo "2000 1048576 1048576 1" ;;
        many-1m:1) echo "200 1048576 1048576 1" ;;
        small:0) echo "20000 1024 262144 2" ;;
        small:1) echo "2000 1024 262144 2" ;;
        large:0) echo "8 268435456 268435456 3" ;;
        large:1) echo "2 67108864 67108864 3" ;;
    esac
}

# Generate a data set once; DIR.params (beside it, not in it) remembers its parameters.
dataset() {
    local name="$1" params dir
    params="$(dataset_params "$name")"
    dir="$BENCH_DIR/data-$name"
    if [[ "$(cat "$dir.params" 2>/dev/null)" != "$params" ]]; then
        echo "run.sh: generating $name ($params)" >&2
        rm -rf "$dir" && mkdir -p "$dir"
        # shellcheck disable=SC2086
        python3 "$ROOT/e2e/bench/gen_data.py" "$dir" $params
        echo "$params" >"$dir.params"
    fi
    echo "$dir"
}

RESULTS="$BENCH_DIR/results.tsv"
: >"$RESULTS"
IFS=, read -r -a SET_LIST <<<"$SETS"
for set in "${SET_LIST[@]}"; do
    case "$set" in
        many-1m | small | large)
            src="$(dataset "$set")"
            python3 "$ROOT/e2e/bench/bench.py" local "$set" "$src" "$RUNS" "$BENCH_DIR" >>"$RESULTS"
            ;;
        s3)
            src="$(dataset many-1m)"
            # shellcheck source=scripts/servers.sh
            source "$ROOT/scripts/servers.sh"
            start_servers
            trap stop_servers EXIT
            python3 "$ROOT/e2e/bench/bench.py" s3 "s3-many-1m" "$src" "$RUNS" "$BENCH_DIR" >>"$RESULTS"
            stop_servers
            trap - EXIT
            ;;
        *) echo "run.sh: unknown data set $set" >&2; exit 2 ;;
    esac
done
python3 "$ROOT/e2e/bench/bench.py" report "$RESULTS"
