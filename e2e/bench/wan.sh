#!/usr/bin/env bash
# relocate vs rclone across a long, narrow link, in one invocation: the WAN proxy of the
# test harness (e2e/src/wan, started by `cargo run --example wan_figures`) in front of an
# S3 source on s3s-fs (scripts/servers.sh), relocate and rclone at the target side
# writing to local directories, the tools taking turns.
#
# usage: e2e/bench/wan.sh [--quick] [--runs N] [--sets LIST]
#   --quick      small sizes (a smoke run of a few minutes)
#   --runs N     alternations per data set (default 1); relocate, rclone defaults and
#                rclone --transfers 64 --checkers 64 take turns within each
#   --sets LIST  comma-separated subset of: large, mid, small, rtt0, verify (default: all)
# env (sizes; the defaults are the issue's, --quick's in brackets):
#   WAN_RTT_MS=40  WAN_MBIT=200               the link (round trip; Mbit/s each way)
#   WAN_LARGE="4 268435456"     ["2 16777216"]         large: COUNT SIZE
#   WAN_MID="500 1048576"       ["50 1048576"]         mid:   COUNT SIZE
#   WAN_SMALL="20000 1024 65536" ["500 1024 65536"]    small: COUNT MIN MAX (log-uniform)
#   WAN_RTT0_SMALL=<WAN_SMALL>                          rtt0: the small set at 0 ms
#   WAN_TOOLS="relocate,rclone,rclone64"               which tools run
#   WAN_RELOCATE_EXTRA=", concurrency: 64"         more keys for relocate's workload
#   RELOCATE_BIN, WAN_FIGURES_BIN   prebuilt binaries (else built here, release)
#
# Sets:
#   large, mid, small  through the link: `relocate run` (one stage: copy, then verify;
#       the verify re-reads the local target) against `rclone copy` then
#       `rclone check --download` (which downloads the source a second time), with
#       defaults and with --transfers 64 --checkers 64. Per tool: wall time (copy, then
#       verify/check), link utilisation = data bytes / (wall time x shaped rate), the
#       bytes that crossed the link, objects/s, peak RSS (GNU time), requests per object.
#   rtt0   the small set through the proxy with no delay and no shaping (loopback):
#       what the round trip costs each tool, and its requests per object.
#   verify relocate only: the mid set from s3s-fs directly to an S3 target (another
#       bucket of the same s3s-fs) behind the link; the verify step with `mode: reread`
#       and with `mode: checksum`: its time and the bytes it read through the link.
# The data are generated once per invocation into s3s-fs's directory (page cache warm:
# 23 GiB of RAM hold them). Targets are kept until the end: ext4 here slows down file
# creation right after removals (README, "Benchmarks"). Prints a table per set and the
# ratios at the end; the raw results stay in $WAN_WORK/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

QUICK=0 RUNS=1 SETS="large,mid,small,rtt0,verify"
while (($#)); do
    case "$1" in
        --quick) QUICK=1 ;;
        --runs) RUNS="$2"; shift ;;
        --sets) SETS="$2"; shift ;;
        -h | --help) sed -n '2,37p' "$0"; exit 0 ;;
        *) echo "wan.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if ((QUICK)); then
    : "${WAN_LARGE:=2 16777216}" "${WAN_MID:=50 1048576}" "${WAN_SMALL:=500 1024 65536}"
else
    : "${WAN_LARGE:=4 268435456}" "${WAN_MID:=500 1048576}" "${WAN_SMALL:=20000 1024 65536}"
fi
: "${WAN_RTT0_SMALL:=$WAN_SMALL}" "${WAN_RTT_MS:=40}" "${WAN_MBIT:=200}"
: "${WAN_TOOLS:=relocate,rclone,rclone64}"
export WAN_LARGE WAN_MID WAN_SMALL WAN_RTT0_SMALL WAN_RTT_MS WAN_MBIT WAN_TOOLS RUNS SETS

command -v rclone >/dev/null || { echo "wan.sh: rclone is not installed (apt-get install rclone)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "wan.sh: GNU time is missing (apt-get install time)" >&2; exit 1; }
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ -z "${RELOCATE_BIN:-}" || -z "${WAN_FIGURES_BIN:-}" ]]; then
    echo "wan.sh: building relocate and the wan_figures example (release)" >&2
    cargo build --release -p orchestrator --bin relocate >&2
    cargo build --release -p e2e --example wan_figures >&2
fi
export RELOCATE_BIN="${RELOCATE_BIN:-$TARGET/release/relocate}"
export WAN_FIGURES_BIN="${WAN_FIGURES_BIN:-$TARGET/release/examples/wan_figures}"

# shellcheck source=scripts/servers.sh
source scripts/servers.sh
start_servers >&2
WAN_WORK="$(mktemp -d /tmp/relocate-wan.XXXXXX)"
export WAN_WORK
# WAN_KEEP=1 keeps every run's plan, output and logs (RUST_LOG reaches relocate).
trap 'stop_servers; [[ -n "${WAN_KEEP:-}" ]] || rm -rf "$WAN_WORK"/runs' EXIT

gen() { # bucket count min max seed
    echo "wan.sh: generating $1 ($2 objects, $3-$4 bytes)" >&2
    mkdir -p "$RELOCATE_TEST_S3S_ROOT/$1"
    python3 "$ROOT/e2e/bench/gen_data.py" "$RELOCATE_TEST_S3S_ROOT/$1" "$2" "$3" "$4" "$5"
}
# One bucket per set, its objects at the bucket's root (d00/…d99/): rclone HEADs a root
# with a prefix to see whether it is a file, s3s-fs answers 500 for a directory, and
# rclone's retries of that HEAD cost ~90 s per command.
has() { [[ ",$SETS," == *",$1,"* ]]; }
if has large; then read -r n size <<<"$WAN_LARGE" && gen wan-large "$n" "$size" "$size" 3; fi
if has mid || has verify; then read -r n size <<<"$WAN_MID" && gen wan-mid "$n" "$size" "$size" 1; fi
if has small || { has rtt0 && [[ "$WAN_RTT0_SMALL" == "$WAN_SMALL" ]]; }; then
    read -r n lo hi <<<"$WAN_SMALL" && gen wan-small "$n" "$lo" "$hi" 2
fi
if has rtt0 && [[ "$WAN_RTT0_SMALL" != "$WAN_SMALL" ]]; then
    read -r n lo hi <<<"$WAN_RTT0_SMALL" && gen wan-small0 "$n" "$lo" "$hi" 2
fi
mkdir -p "$RELOCATE_TEST_S3S_ROOT/wan-dst"

python3 - <<'PY'
import json, os, re, statistics, subprocess, sys, time
from collections import defaultdict

env = os.environ
WORK, RELOCATE, FIGURES = env["WAN_WORK"], env["RELOCATE_BIN"], env["WAN_FIGURES_BIN"]
ENDPOINT = env["RELOCATE_TEST_S3S_ENDPOINT"]
KEY, SECRET = env["RELOCATE_TEST_S3S_ACCESS_KEY"], env["RELOCATE_TEST_S3S_SECRET_KEY"]
RTT, MBIT, RUNS = int(env["WAN_RTT_MS"]), int(env["WAN_MBIT"]), int(env["RUNS"])
RATE = MBIT * 1_000_000 / 8
SETS = env["SETS"].split(",")
TOOLS = env["WAN_TOOLS"].split(",")
RESULTS = open(os.path.join(WORK, "results.jsonl"), "a")


def log(*a):
    print("wan.sh:", *a, file=sys.stderr, flush=True)


def sizes(var):
    parts = [int(x) for x in env[var].split()]
    return parts[0], parts[1:]


def data_bytes(bucket):
    root = os.path.join(env["RELOCATE_TEST_S3S_ROOT"], bucket)
    total = count = 0
    for d, _, files in os.walk(root):
        for f in files:
            total += os.path.getsize(os.path.join(d, f))
            count += 1
    return count, total


proxy = subprocess.Popen([FIGURES, ENDPOINT, f"wan={RTT}:{MBIT}", "lan=0"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
LINKS = {}
for line in proxy.stdout:
    if line.strip() == "ready":
        break
    _, name, url = line.split()
    LINKS[name] = url


def take(link):
    proxy.stdin.write(f"take {link}\n")
    proxy.stdin.flush()
    return json.loads(proxy.stdout.readline())


def timed(cmd, out_path, cwd=None, extra_env=None, on_line=None):
    """Run under GNU time: (wall seconds, peak RSS KiB, stdout lines)."""
    rss_path = out_path + ".time"
    e = dict(env)
    e.pop("AWS_CA_BUNDLE", None)
    e.update(extra_env or {})
    start = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-v", "-o", rss_path, *cmd], cwd=cwd, env=e,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=open(out_path + ".err", "w"), text=True)
    lines = []
    for line in p.stdout:
        lines.append(line)
        if on_line:
            on_line(line)
    rc = p.wait()
    wall = time.perf_counter() - start
    with open(out_path + ".stdout", "w") as f:
        f.writelines(lines)
    if rc != 0:
        sys.exit(f"wan.sh: {' '.join(cmd)} failed ({rc}); see {out_path}.err")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(rss_path).read()).group(1))
    return wall, rss, lines


def s3_store(bucket, endpoint, prefix=""):
    return (f'url: "s3://{bucket}/{prefix}", options: {{ endpoint: "{endpoint}", allow_http: "true", '
            f'region: us-east-1, access_key_id: "${{env:RELOCATE_TEST_S3S_ACCESS_KEY}}", '
            f'secret_access_key: "${{env:RELOCATE_TEST_S3S_SECRET_KEY}}" }}')


def plan(src, dst, extra=""):
    return f"""apiVersion: relocate/v1
kind: MigrationPlan
name: wan
regions:
  moscow: {{ jurisdiction: RU }}
  zurich: {{ jurisdiction: CH }}
source: moscow
target: zurich
stores:
  src: {{ {src}, region: moscow }}
  dst: {{ {dst}, region: zurich }}
workloads:
  w:
    objects: {{ from: src, to: dst{extra} }}
stages:
  - name: s
    steps: [ {{ copy: w }}, {{ verify: w }} ]
"""


RUN_ID = [0]


def rundir(name):
    RUN_ID[0] += 1
    d = os.path.join(WORK, "runs", f"{RUN_ID[0]:03d}-{name}")
    os.makedirs(d)
    return d


def relocate(bucket, link):
    d = rundir(f"relocate-{bucket}-{link}")
    with open(os.path.join(d, "plan.yaml"), "w") as f:
        f.write(plan(s3_store(bucket, LINKS[link]), 'url: "file://./dst/"', env.get("WAN_RELOCATE_EXTRA", "")))
    take(link)
    wall, rss, lines = timed([RELOCATE, "run", "plan.yaml", "--state-dir", "state", "--output", "json"],
                             os.path.join(d, "out"), cwd=d)
    counts = take(link)
    steps = {}
    for line in lines:
        ev = json.loads(line)
        if ev.get("event") == "step_finished":
            s = ev["summary"]
            if s["outcome"] != "succeeded":
                sys.exit(f"wan.sh: relocate step {s['kind']} {s['outcome']}: {ev.get('error')}")
            steps[s["kind"]] = s["seconds"]
    return dict(wall=wall, rss=rss, parts={"copy": steps.get("copy"), "verify": steps.get("verify")},
                requests={"copy+verify": counts}, bytes_down=counts["bytes_down"])


def rclone(bucket, link, wide):
    d = rundir(f"rclone{'64' if wide else ''}-{bucket}-{link}")
    cfg = {"RCLONE_CONFIG": "/dev/null", "RCLONE_CONFIG_SRC_TYPE": "s3",
           "RCLONE_CONFIG_SRC_PROVIDER": "Other", "RCLONE_CONFIG_SRC_ENDPOINT": LINKS[link],
           "RCLONE_CONFIG_SRC_REGION": "us-east-1", "RCLONE_CONFIG_SRC_ACCESS_KEY_ID": KEY,
           "RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY": SECRET}
    flags = ["--transfers", "64", "--checkers", "64"] if wide else []
    dst = os.path.join(d, "dst")
    take(link)
    w1, r1, _ = timed(["rclone", "copy", f"src:{bucket}", dst, *flags], os.path.join(d, "copy"), extra_env=cfg)
    c1 = take(link)
    w2, r2, _ = timed(["rclone", "check", "--download", f"src:{bucket}", dst, *flags],
                      os.path.join(d, "check"), extra_env=cfg)
    c2 = take(link)
    return dict(wall=w1 + w2, rss=max(r1, r2), parts={"copy": w1, "verify": w2},
                requests={"copy": c1, "check --download": c2}, bytes_down=c1["bytes_down"] + c2["bytes_down"])


def run_tool(tool, bucket, link):
    if tool == "relocate":
        return relocate(bucket, link)
    return rclone(bucket, link, tool == "rclone64")


def record(kind, **row):
    row["kind"] = kind
    RESULTS.write(json.dumps(row) + "\n")
    RESULTS.flush()
    return row


SETS_DEF = {
    "large": ("wan-large", "wan"),
    "mid": ("wan-mid", "wan"),
    "small": ("wan-small", "wan"),
    "rtt0": ("wan-small0" if env["WAN_RTT0_SMALL"] != env["WAN_SMALL"] else "wan-small", "lan"),
}
rows = []
for name in SETS:
    if name in SETS_DEF:
        bucket, link = SETS_DEF[name]
        n, total = data_bytes(bucket)
        for run in range(RUNS):
            for tool in TOOLS:
                log(f"{name} run {run + 1}/{RUNS}: {tool} ({n} objects, {total / 2**20:.0f} MiB, link {link})")
                r = run_tool(tool, bucket, link)
                rows.append(record("tool", set=name, link=link, tool=tool, run=run, objects=n, bytes=total, **r))
                log(f"  {r['wall']:.1f} s (copy {r['parts']['copy']:.1f}, verify {r['parts']['verify']:.1f}), "
                    f"{r['rss'] / 1024:.0f} MiB")
    elif name == "verify":
        n, total = data_bytes("wan-mid")
        for run in range(RUNS):
            for mode in ["reread", "checksum"]:
                d = rundir(f"verify-{mode}")
                extra = ", verify: { mode: checksum }" if mode == "checksum" else ""
                with open(os.path.join(d, "plan.yaml"), "w") as f:
                    f.write(plan(s3_store("wan-mid", ENDPOINT), s3_store("wan-dst", LINKS["wan"], f"{RUN_ID[0]:03d}/"),
                                 extra))
                take("wan")
                phase = {}

                def on_line(line):
                    ev = json.loads(line)
                    if ev.get("event") == "step_started" and ev.get("kind") == "verify":
                        phase["copy"] = take("wan")

                log(f"verify run {run + 1}/{RUNS}: mode {mode} ({n} objects to an S3 target behind the link)")
                wall, rss, lines = timed([RELOCATE, "run", "plan.yaml", "--state-dir", "state", "--output", "json"],
                                         os.path.join(d, "out"), cwd=d, on_line=on_line)
                counts = take("wan")
                secs = {}
                for line in lines:
                    ev = json.loads(line)
                    if ev.get("event") == "step_finished":
                        secs[ev["summary"]["kind"]] = ev["summary"]["seconds"]
                        if ev["summary"]["kind"] == "verify":
                            by_checksum = ev["summary"].get("verified_by_checksum", 0)
                rows.append(record("verify", mode=mode, run=run, objects=n, bytes=total, verify_s=secs["verify"],
                                   copy_s=secs["copy"], requests=counts, by_checksum=by_checksum))
                log(f"  verify {secs['verify']:.1f} s, {counts['bytes_down'] / 2**20:.1f} MiB read, "
                    f"{by_checksum} by checksum")
    else:
        sys.exit(f"wan.sh: unknown set {name}")
proxy.stdin.close()
proxy.wait()

# ---- report ----
med = statistics.median
LABEL = {"relocate": "relocate", "rclone": "rclone defaults", "rclone64": "rclone --transfers 64 --checkers 64"}
print(f"\nLink: {RTT} ms round trip, {MBIT} Mbit/s each way ({RATE / 1e6:.0f} MB/s); source s3s-fs behind the "
      f"WAN proxy, targets local directories; {RUNS} alternating run(s), medians; machine {os.cpu_count()} cores")
ratios = []


def per_object(r, n):
    out = {}
    for step, c in r["requests"].items():
        req = dict(c["requests"])
        out[step] = (c["total"] / n, ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(req.items()) if v))
    return out


for name in [s for s in SETS if s in SETS_DEF]:
    sel = [r for r in rows if r["kind"] == "tool" and r["set"] == name]
    if not sel:
        continue
    n, total = sel[0]["objects"], sel[0]["bytes"]
    link = "0 ms, unshaped" if name == "rtt0" else f"{RTT} ms, {MBIT} Mbit/s"
    print(f"\n[{name}] {n} objects, {total / 2**20:.1f} MiB, {link}")
    print(f"{'tool':<38}{'wall s':>8}{'copy s':>8}{'verify s':>9}{'util %':>8}{'link MB':>9}{'obj/s':>8}"
          f"{'RSS MiB':>8}  requests per object")
    walls = {}
    for tool in TOOLS:
        rs = [r for r in sel if r["tool"] == tool]
        if not rs:
            continue
        wall = med(r["wall"] for r in rs)
        walls[tool] = wall
        util = total / (wall * RATE) * 100 if name != "rtt0" else float("nan")
        po = per_object(rs[0], n)
        req = "; ".join(f"{k}: {t:.2f} ({d})" for k, (t, d) in po.items())
        print(f"{LABEL[tool]:<38}{wall:8.1f}{med(r['parts']['copy'] for r in rs):8.1f}"
              f"{med(r['parts']['verify'] for r in rs):9.1f}{util:8.0f}{med(r['bytes_down'] for r in rs) / 1e6:9.0f}"
              f"{n / wall:8.0f}{max(r['rss'] for r in rs) / 1024:8.0f}  {req}")
    if "relocate" in walls:
        for other in ["rclone", "rclone64"]:
            if other in walls:
                ratios.append((name, f"{LABEL[other]} / relocate, wall time", walls[other] / walls["relocate"]))
        if name != "rtt0":
            ratios.append((name, "relocate link utilisation (data / (wall x rate))", total / (walls["relocate"] * RATE)))
            copy = med(r["parts"]["copy"] for r in sel if r["tool"] == "relocate")
            ratios.append((name, "relocate copy step alone, utilisation", total / (copy * RATE)))

ver = [r for r in rows if r["kind"] == "verify"]
if ver:
    n, total = ver[0]["objects"], ver[0]["bytes"]
    print(f"\n[verify] relocate's verify step, {n} objects, {total / 2**20:.1f} MiB at an S3 target behind the link")
    print(f"{'mode':<10}{'verify s':>9}{'MiB read':>10}{'by checksum':>12}  requests")
    by = {}
    for mode in ["reread", "checksum"]:
        rs = [r for r in ver if r["mode"] == mode]
        if not rs:
            continue
        by[mode] = med(r["verify_s"] for r in rs)
        c = rs[0]["requests"]
        print(f"{mode:<10}{by[mode]:9.1f}{med(r['requests']['bytes_down'] for r in rs) / 2**20:10.1f}"
              f"{rs[0]['by_checksum']:12d}  {c['requests']}")
    if len(by) == 2:
        ratios.append(("verify", "reread / checksum, verify time", by["reread"] / by["checksum"]))

print("\nRatios (> 1: relocate is faster)")
for name, what, value in ratios:
    print(f"  {name:<7} {what:<55} {value:6.2f}")
print(f"\nraw results: {WORK}/results.jsonl")
PY
