#!/usr/bin/env bash
# Volume movers against the floor and the peers: one tree of N small files (default
# 1,000,000 of 100 B, 1,000 per directory) moved through a staging bucket on s3s-fs
# (scripts/servers.sh, loopback) by `relocate volume pack` then `relocate volume
# restore` (the release binary, as a mover pod runs it), against `rsync -a` of the same
# tree (the floor: Crane's direct mode) and `rclone copy --links` into another bucket of
# the same server then `rclone check --download` (Crane's indirect mode). Prints wall
# time, files/s and peak RSS (GNU time) of each.
#
# usage: e2e/bench/volumes.sh [--files N] [--size BYTES]
# The second row is the delta pack after `freeze` (nothing changed since the first).
# PEERS (default "rsync rclone") picks the peers: rclone runs about 1,000 files/s
# against s3s-fs here, so a 1M-file run usually leaves it out (PEERS=rsync).
# The trees are written under $TMPDIR (default /tmp): 3 × N inodes.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
FILES=1000000 SIZE=100
while (($#)); do
    case "$1" in
        --files) FILES="$2"; shift ;;
        --size) SIZE="$2"; shift ;;
        *) echo "volumes.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
cargo build --release -p orchestrator >&2
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/relocate"
source scripts/servers.sh
start_servers >&2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/relocate-volumes.XXXXXX")
trap 'stop_servers; rm -rf "$WORK"' EXIT
BUCKET="volumes-$$"
mkdir -p "$RELOCATE_TEST_S3S_ROOT/$BUCKET" "$RELOCATE_TEST_S3S_ROOT/$BUCKET-rclone"
echo "writing $FILES files of $SIZE B under $WORK/src" >&2
python3 - "$WORK/src" "$FILES" "$SIZE" <<'PY'
import os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
body = b"x" * size
for d in range((n + 999) // 1000):
    path = os.path.join(root, f"d{d:04d}")
    os.makedirs(path)
    for i in range(min(1000, n - d * 1000)):
        with open(os.path.join(path, f"f{i:04d}"), "wb") as f:
            f.write(body)
PY
cat > "$WORK/plan.yaml" <<EOF
apiVersion: relocate/v1
kind: MigrationPlan
name: bench
regions:
  moscow: { jurisdiction: RU }
  zurich: { jurisdiction: CH }
source: moscow
target: zurich
stores:
  staging:
    region: zurich
    url: "s3://$BUCKET/"
    options: { endpoint: "$RELOCATE_TEST_S3S_ENDPOINT", allow_http: "true", region: us-east-1, access_key_id: "\${env:STAGING_KEY_ID}", secret_access_key: "\${env:STAGING_SECRET}" }
clusters:
  msk: { region: moscow, context: msk }
  zrh: { region: zurich, context: zrh }
workloads:
  analyzer:
    kubernetes: { from: msk, to: zrh, namespace: analysis, volumes: { copy: true, staging: staging } }
stages:
  - name: cutover
    steps: [ { freeze: analyzer }, { copy: analyzer }, { deploy: analyzer } ]
EOF
DIGEST=$("$BIN" plan validate "$WORK/plan.yaml" | grep -o "sha256:[0-9a-f]*" | head -1)
mkdir -p "$WORK/state/v"
python3 - "$WORK" "$DIGEST" <<'PY'
import json, sys
work, digest = sys.argv[1], sys.argv[2]
plan = open(f"{work}/plan.yaml").read()
json.dump({"version": 1, "planDigest": digest, "planText": plan, "planPath": f"{work}/plan.yaml",
           "workload": "analyzer", "claims": ["data-bench-0"]}, open(f"{work}/state/v/order.json", "w"))
PY
export STAGING_KEY_ID="$RELOCATE_TEST_S3S_ACCESS_KEY" STAGING_SECRET="$RELOCATE_TEST_S3S_SECRET_KEY"
export RELOCATE_STATE_STORE="{\"region\": \"zurich\", \"url\": \"file://$WORK/state/\"}"
# rclone refuses AWS_CA_BUNDLE with its own HTTP transport; the server is plain http.
unset AWS_CA_BUNDLE
export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_S3_REGION=us-east-1
export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ENDPOINT="$RELOCATE_TEST_S3S_ENDPOINT" \
    RCLONE_CONFIG_S3_ACCESS_KEY_ID="$RELOCATE_TEST_S3S_ACCESS_KEY" RCLONE_CONFIG_S3_SECRET_ACCESS_KEY="$RELOCATE_TEST_S3S_SECRET_KEY"

# measure NAME COMMAND...: wall seconds and peak RSS (MiB) of one command.
measure() {
    local name="$1"; shift
    sync
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || {
        echo "volumes.sh: $name failed:" >&2; tail -5 "$WORK/$name.err" >&2; exit 1; }
    read -r secs kib <"$WORK/time"
    printf '%-34s %8.1f s %10.0f files/s %8d MiB\n' "$name" "$secs" "$(echo "$FILES / $secs" | bc -l)" $((kib / 1024))
}

printf '%-34s %10s %18s %12s\n' "$FILES files of $SIZE B" "wall" "rate" "peak RSS"
measure "relocate volume pack" "$BIN" volume pack --order v/order.json --index 0 --path "$WORK/src"
# The copy after `freeze`: a pack after a complete one re-hashes every file and uploads
# only what changed (here nothing).
segments() { find "$RELOCATE_TEST_S3S_ROOT/$BUCKET" -name '*.seg' | wc -l; }
SEEDED=$(segments)
measure "relocate volume pack (delta)" "$BIN" volume pack --order v/order.json --index 0 --path "$WORK/src"
echo "delta pack: $(( $(segments) - SEEDED )) new segment(s) beside the seed's $SEEDED" >&2
measure "relocate volume restore (re-hash)" "$BIN" volume restore --order v/order.json --index 0 --path "$WORK/dst"
measure "relocate volume verify (re-read)" "$BIN" volume verify --order v/order.json --index 0 --path "$WORK/dst"
rm -rf "$WORK/dst"
PEERS="${PEERS:-rsync rclone}"
if [[ " $PEERS " == *" rsync "* ]]; then
    measure "rsync -a (local, the floor)" rsync -a "$WORK/src/" "$WORK/rsync/"
    rm -rf "$WORK/rsync"
fi
if [[ " $PEERS " == *" rclone "* ]]; then
    measure "rclone copy --links (to S3)" rclone copy --links "$WORK/src" "s3:$BUCKET-rclone/t"
    measure "rclone check --download" rclone check --download "$WORK/src" "s3:$BUCKET-rclone/t"
fi
echo "staged by relocate: $(find "$RELOCATE_TEST_S3S_ROOT/$BUCKET" -type f | wc -l) objects; by rclone: $(find "$RELOCATE_TEST_S3S_ROOT/$BUCKET-rclone" -type f | wc -l)" >&2
