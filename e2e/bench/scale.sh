#!/usr/bin/env bash
# relocate at scale on local files (issue 7; method: README, "Benchmarks"): memory must stay flat as the
# object count grows, the first object must start copying within seconds, and a copy
# that finds nothing to do must finish in seconds.
#
# usage: e2e/bench/scale.sh [N]      (default N = 1000000; try 10000, 100000 first)
# env:   SCALE_DIR (default /tmp/relocate-scale), RELOCATE_BIN (default target/release/relocate)
#
# Generates N small objects (0–199 bytes, 1,000 directories) once, then runs a plan of two
# stages `[copy, verify]` twice over the same workload (the second copy is the delta sync
# that finds nothing to do) and prints: peak RSS (/usr/bin/time -v), time to the first
# object at the target (polled every 10 ms), per-step seconds and the total.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-1000000}"
DIR="${SCALE_DIR:-/tmp/relocate-scale}/n$N"
BIN="${RELOCATE_BIN:-$PWD/target/release/relocate}"
[[ -x "$BIN" ]] || cargo build --release -p orchestrator >&2
mkdir -p "$DIR"
if [[ ! -f "$DIR/.generated" ]]; then
    echo "scale.sh: generating $N objects in $DIR/src" >&2
    python3 - "$DIR/src" "$N" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in range(1000):
    os.makedirs(f"{root}/p{d:03}", exist_ok=True)
for i in range(n):
    with open(f"{root}/p{i % 1000:03}/o{i:07}", "wb") as f:
        f.write(b"x" * (i % 200))
PY
    touch "$DIR/.generated"
fi
cat > "$DIR/plan.yaml" <<'YAML'
apiVersion: relocate/v1
kind: MigrationPlan
name: scale
regions:
  a: { jurisdiction: RU }
  b: { jurisdiction: CH }
source: a
target: b
stores:
  src: { region: a, url: "file://./src/" }
  dst: { region: b, url: "file://./dst/" }
workloads:
  data:
    objects: { from: src, to: dst }
stages:
  - name: seed
    steps: [ { copy: data }, { verify: data } ]
  - name: delta
    steps: [ { copy: data }, { verify: data } ]
YAML
if [[ -e "$DIR/dst" || -e "$DIR/state" ]]; then
    # ext4 without a journal skips inodes freed in the last 60 s, or 360 s while their inode
    # table block is dirty (new allocations make it so), when it allocates: right after
    # removing the previous run's N files the seed copy spent most of its time in the
    # kernel's `recently_deleted` (100k objects: 32–52 s after a 61 s wait, 17 s after 362 s).
    echo "scale.sh: removing the previous run's target, then waiting 361 s (see the script)" >&2
    rm -rf "$DIR/dst" "$DIR/state"
    sync
    sleep 361
fi
start=$(date +%s.%N)
/usr/bin/time -v "$BIN" run "$DIR/plan.yaml" --state-dir "$DIR/state" --output json \
    >"$DIR/run.jsonl" 2>"$DIR/time.txt" &
pid=$!
first=""
while kill -0 "$pid" 2>/dev/null; do
    if [[ -z "$first" ]] && [[ -n "$(find "$DIR/dst" -type f -print -quit 2>/dev/null)" ]]; then
        first=$(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')")
    fi
    sleep 0.01
done
wait "$pid"
echo "objects:              $N"
echo "time to first object: ${first:-?} s"
grep -E "Elapsed|Maximum resident" "$DIR/time.txt" | sed 's/^\s*/                      /'
tail -1 "$DIR/run.jsonl" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("outcome:             ", d["outcome"])
for s in d["steps"]:
    print("  %-6s %-6s copied %8d unchanged %8d verified %8d  %8.2f s" % (s["stage"], s["kind"], s["copied"], s["skipped"], s["verified"], s["seconds"]))
'
