#!/usr/bin/env bash
# Scale-out overhead: the same S3 → local copy + verify, in process and with 1, 2 and 4
# shards on the local executor (workers as child processes), alternating, on s3s-fs
# (scripts/servers.sh) on loopback.
#
# usage: e2e/bench/scaleout.sh [--objects N] [--size BYTES] [--runs N]
# Prints per configuration the median wall time, MB/s and peak RSS of the coordinator
# (workers are separate processes: their peak RSS is not included; see the README).
# This machine has 2 cores: shards share them, so the figure is the overhead of
# sharding, not a speedup.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
OBJECTS=400 SIZE=$((1 << 20)) RUNS=3
while (($#)); do
    case "$1" in
        --objects) OBJECTS="$2"; shift ;;
        --size) SIZE="$2"; shift ;;
        --runs) RUNS="$2"; shift ;;
        *) echo "scaleout.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
cargo build --release -p orchestrator >&2
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/relocate"
source scripts/servers.sh
start_servers >&2
trap stop_servers EXIT
WORK=$(mktemp -d /tmp/relocate-scaleout.XXXXXX)
BUCKET="bench-$$"
mkdir -p "$RELOCATE_TEST_S3S_ROOT/$BUCKET/data"
python3 - "$RELOCATE_TEST_S3S_ROOT/$BUCKET/data" "$OBJECTS" "$SIZE" <<'PY'
import os, sys, random
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(14)
for i in range(n):
    d = os.path.join(root, f"t{i % 17:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"o{i:06d}.bin"), "wb") as f:
        f.write(rnd.randbytes(size))
PY
plan() { # $1 = extra workload keys
    cat <<YAML
apiVersion: relocate/v1
kind: MigrationPlan
name: scaleout
regions:
  moscow: { jurisdiction: RU }
  zurich: { jurisdiction: CH }
source: moscow
target: zurich
stores:
  src: { region: moscow, url: "s3://$BUCKET/data/", options: { endpoint: "$RELOCATE_TEST_S3S_ENDPOINT", allow_http: "true", region: us-east-1, access_key_id: "\${env:RELOCATE_TEST_S3S_ACCESS_KEY}", secret_access_key: "\${env:RELOCATE_TEST_S3S_SECRET_KEY}" } }
  dst: { region: zurich, url: "file://./dst/" }
workloads:
  w:
    objects: { from: src, to: dst$1 }
stages:
  - name: s
    steps: [ { copy: w }, { verify: w } ]
YAML
}
declare -A CONF=(
    [in-process]=""
    [1-shard]=", shards: 1, workers: { local: { parallelism: 1 } }"
    [2-shards]=", shards: 2, workers: { local: { parallelism: 2 } }"
    [4-shards]=", shards: 4, workers: { local: { parallelism: 4 } }"
)
ORDER=(in-process 1-shard 2-shards 4-shards)
for name in "${ORDER[@]}"; do
    mkdir -p "$WORK/$name"
    plan "${CONF[$name]}" >"$WORK/$name/plan.yaml"
done
: >"$WORK/results"
for run in $(seq 1 "$RUNS"); do
    for name in "${ORDER[@]}"; do
        dir="$WORK/$name"
        rm -rf "$dir/dst" "$dir/state"
        sync
        start=$(date +%s.%N)
        /usr/bin/time -f "%M" -o "$dir/rss" "$BIN" run "$dir/plan.yaml" --state-dir "$dir/state" --output json >"$dir/out.json" 2>"$dir/err" \
            || { echo "run failed: $name" >&2; cat "$dir/err" "$dir/out.json" >&2; exit 1; }
        end=$(date +%s.%N)
        echo "$name $(python3 -c "print($end - $start)") $(cat "$dir/rss")" >>"$WORK/results"
    done
done
python3 - "$WORK/results" "$OBJECTS" "$SIZE" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, wall, rss = line.split()
    rows[name].append((float(wall), int(rss)))
n, size = int(sys.argv[2]), int(sys.argv[3])
mb = n * size / 1e6
base = statistics.median(w for w, _ in rows["in-process"])
print(f"{n} objects x {size} B = {mb:.0f} MB, S3 (s3s-fs) -> local, copy + verify (the target re-read)")
print(f"{'config':<12} {'median s':>9} {'MB/s':>7} {'vs in-process':>14} {'coord. RSS MiB':>15}")
for name in ["in-process", "1-shard", "2-shards", "4-shards"]:
    walls = [w for w, _ in rows[name]]
    med = statistics.median(walls)
    rss = max(r for _, r in rows[name]) / 1024
    print(f"{name:<12} {med:9.2f} {mb / med:7.0f} {med / base:13.2f}x {rss:15.0f}")
PY
rm -rf "$WORK" "$RELOCATE_TEST_S3S_ROOT/$BUCKET"
