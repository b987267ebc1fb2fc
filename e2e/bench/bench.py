#!/usr/bin/env python3
"""Runs of relocate and rclone for e2e/bench/run.sh, and the report over them.

usage: bench.py local|s3 NAME SRC_DIR RUNS BENCH_DIR   (prints TSV result rows)
       bench.py report RESULTS_TSV                     (prints the summary table)
A row: set, tool, run, ok, wall seconds, peak RSS KiB, bytes, objects.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def dataset_size(src):
    total, count = 0, 0
    for root, _, files in os.walk(src):
        for f in files:
            if f.startswith("."):
                continue
            total += os.path.getsize(os.path.join(root, f))
            count += 1
    return total, count


def timed(cmd, env=None, log=None):
    """Run cmd under /usr/bin/time -v: (ok, wall seconds, peak RSS KiB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        start = time.monotonic()
        with open(log or os.devnull, "ab") as out:
            proc = subprocess.run(["/usr/bin/time", "-v", "-o", tf.name, *cmd], stdout=out, stderr=out, env=env)
        wall = time.monotonic() - start
        rss = 0
        for line in tf.read().splitlines():
            if "Maximum resident set size" in line:
                rss = int(line.rsplit(":", 1)[1])
    if proc.returncode != 0:
        print(f"bench.py: {' '.join(cmd[:3])} … exited {proc.returncode}; see {log}", file=sys.stderr)
    return proc.returncode == 0, wall, rss


def plan_yaml(name, src_url, dst_url, src_opts, dst_opts, checksum="sha256"):
    def store(region, url, opts):
        lines = [f"  {region}:", f"    region: {region}", f'    url: "{url}"']
        if opts:
            lines.append("    options:")
            lines += [f'      {k}: "{v}"' for k, v in opts.items()]
        return "\n".join(lines)

    return f"""apiVersion: relocate/v1
kind: MigrationPlan
name: bench-{name}
regions:
  src: {{ jurisdiction: CH }}
  dst: {{ jurisdiction: CH }}
source: src
target: dst
residency:
  allowedTargetJurisdictions: [CH]
stores:
{store("src", src_url, src_opts)}
{store("dst", dst_url, dst_opts)}
workloads:
  w:
    objects: {{ from: src, to: dst, include: ["**"], checksum: {checksum} }}
stages:
  - name: copy-verify
    steps: [ {{ copy: w }}, {{ verify: w }} ]
"""


class Local:
    """file:// → file:// on this machine's disk."""

    def __init__(self, name, src, scratch):
        self.name, self.src, self.scratch = name, src, scratch

    def fresh_target(self, tool, run):
        # Every run writes into a directory of its own. Once measured, a target's files are
        # emptied (`done`), which gives the space back without freeing inodes: ext4 without
        # a journal (this machine's root) skips inodes freed in the last 60 s, or 360 s while
        # their inode table block is dirty, when it allocates, so a run that followed the
        # removal of the previous target spent its time scanning for free inodes
        # (`recently_deleted` in the kernel profile), whichever tool it was. Targets are
        # removed when the set ends, and the next set waits that out.
        return os.path.join(self.scratch, f"dst-{tool.replace(' ', '')}-{run}")

    def done(self, dst):
        for root, _, files in os.walk(dst):
            for f in files:
                os.truncate(os.path.join(root, f), 0)

    def relocate_plan(self, dst, checksum="sha256"):
        return plan_yaml(self.name, f"file://{self.src}", f"file://{dst}", {}, {}, checksum)

    def rclone_paths(self, dst):
        return self.src, dst, os.environ.copy()


class S3:
    """s3:// → s3:// between two buckets of the loopback s3s-fs started by scripts/servers.sh."""

    def __init__(self, name, src, scratch):
        self.name, self.src, self.scratch = name, src, scratch
        self.root = os.environ["RELOCATE_TEST_S3S_ROOT"]
        self.endpoint = os.environ["RELOCATE_TEST_S3S_ENDPOINT"]
        # s3s-fs serves the folders of its root as buckets: the source bucket is a plain copy.
        shutil.copytree(src, os.path.join(self.root, "bench-src"), ignore=shutil.ignore_patterns(".*"))

    def opts(self):
        return {
            "endpoint": self.endpoint,
            "allow_http": "true",
            "region": "us-east-1",
            "access_key_id": "${env:RELOCATE_TEST_S3S_ACCESS_KEY}",
            "secret_access_key": "${env:RELOCATE_TEST_S3S_SECRET_KEY}",
        }

    def fresh_target(self, tool, run):
        bucket = f"bench-dst-{tool}-{run}"
        os.makedirs(os.path.join(self.root, bucket))
        return bucket

    def done(self, bucket):
        pass

    def relocate_plan(self, bucket, checksum="sha256"):
        return plan_yaml(self.name, "s3://bench-src", f"s3://{bucket}", self.opts(), self.opts(), checksum)

    def rclone_paths(self, bucket):
        # The loopback endpoint is plain HTTP: ambient AWS settings (a CA bundle, a profile) only
        # get in the way, and rclone's SDK fails on AWS_CA_BUNDLE with a custom transport.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        # Two remotes with the same settings: rclone copies server-side within one remote,
        # and relocate streams between two stores, so compare streaming with streaming.
        for remote in ("A", "B"):
            p = f"RCLONE_CONFIG_{remote}_"
            env.update({
                p + "TYPE": "s3", p + "PROVIDER": "Other", p + "ENDPOINT": self.endpoint,
                p + "ACCESS_KEY_ID": os.environ["RELOCATE_TEST_S3S_ACCESS_KEY"],
                p + "SECRET_ACCESS_KEY": os.environ["RELOCATE_TEST_S3S_SECRET_KEY"],
                p + "REGION": "us-east-1", p + "FORCE_PATH_STYLE": "true",
            })
        return "A:bench-src", f"B:{bucket}", env


def warm(src):
    """Read the source once so that both tools meet it in the page cache: otherwise the
    first run of a set pays for the disk reads and the ratio measures the cache."""
    for root, _, files in os.walk(src):
        for name in files:
            warm_file(os.path.join(root, name))


def warm_file(path):
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


# ext4's window for "recently deleted" inodes: `RECENTCY_MIN` (60 s) plus `RECENTCY_DIRTY`
# (300 s) while the inode table block is dirty, which new allocations in the same block
# make it (fs/ext4/ialloc.c). 100,000 small files took 32–52 s to copy 61 s after the
# previous 100,000 were removed, 17 s after 362 s.
RECENTCY = 361


def removed(bench_dir):
    """Note that files were just removed (see `forget_deletions`)."""
    with open(os.path.join(bench_dir, ".last-removal"), "w") as f:
        f.write(str(time.time()))


def forget_deletions(bench_dir):
    """Before a set allocates, let the inodes the previous set freed age past ext4's
    window (see `RECENTCY` and `Local.fresh_target`); a set after a long pause waits for
    nothing."""
    try:
        with open(os.path.join(bench_dir, ".last-removal")) as f:
            last = float(f.read())
    except (OSError, ValueError):
        return
    os.sync()
    wait = last + RECENTCY - time.time()
    if wait > 0:
        print(f"bench.py: waiting {wait:.0f} s for ext4 to forget the removed targets", file=sys.stderr)
        time.sleep(wait)


def tool_binaries():
    """The programs the benchmark times, so that settle() can put them back in the cache."""
    paths = [os.environ.get("RELOCATE_BIN"), shutil.which("rclone"), shutil.which("cp")]
    return [p for p in paths if p and os.path.exists(p)]


def settle(src):
    """Start every timed run from the same memory state: no writeback pending from the run
    before (`sync`), and (when allowed: root) the page cache emptied and refilled with
    the source and the tools' own programs. Without this a run paid for the targets earlier
    runs left in memory: three relocate runs in a row on fresh directories took 1.7, 2.6
    and 3.7 s. The programs are read back too: otherwise each run also timed loading its
    binary from disk (relocate's release build, 139 MB with line tables, started a
    one-object plan in 0.07–0.12 s cold and 0.03 s warm), a cost a move pays once."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
        warm(src)
        for binary in tool_binaries():
            warm_file(binary)
    except OSError:
        pass
    time.sleep(1)


def run_relocate(case, run, scratch, checksum="sha256", tool="relocate"):
    dst = case.fresh_target(tool, run)
    plan = os.path.join(scratch, "plan.yaml")
    with open(plan, "w") as f:
        f.write(case.relocate_plan(dst, checksum))
    state = tempfile.mkdtemp(prefix="state-", dir=scratch)
    log = os.path.join(scratch, f"{tool}-{run}.log")
    settle(case.src)
    result = timed([os.environ["RELOCATE_BIN"], "run", plan, "--state-dir", state, "--output", "json"], log=log)
    shutil.rmtree(state, ignore_errors=True)
    case.done(dst)
    return result


def run_relocate_blake3(case, run, scratch):
    """relocate with `checksum: blake3`: the same copy and verify with the faster hash."""
    return run_relocate(case, run, scratch, "blake3", "relocate-b3")


def run_rclone(case, run, scratch):
    target = case.fresh_target("rclone", run)
    src, dst, env = case.rclone_paths(target)
    env.setdefault("RCLONE_CONFIG", os.path.join(scratch, "rclone.conf"))
    log = os.path.join(scratch, f"rclone-{run}.log")
    settle(case.src)
    ok1, wall1, rss1 = timed(["rclone", "copy", src, dst, "--transfers", "16", "--checkers", "16"], env, log)
    ok2, wall2, rss2 = timed(["rclone", "check", src, dst, "--download", "--checkers", "16"], env, log)
    case.done(target)
    return ok1 and ok2, wall1 + wall2, max(rss1, rss2)


def run_cp(case, run, scratch):
    dst = case.fresh_target("cp", run)
    settle(case.src)
    result = timed(["cp", "-r", case.src, dst], log=os.path.join(scratch, f"cp-{run}.log"))
    case.done(dst)
    return result


def measure(kind, name, src, runs, bench_dir):
    scratch = os.path.join(bench_dir, f"scratch-{name}")
    if os.path.exists(scratch):
        had_targets = any(e.startswith("dst-") for e in os.listdir(scratch))
        shutil.rmtree(scratch, ignore_errors=True)
        if had_targets:
            removed(bench_dir)
    os.makedirs(scratch)
    size, count = dataset_size(src)
    tools = [("relocate", run_relocate), ("rclone", run_rclone)]
    if kind == "local":
        # The same move with BLAKE3 instead of SHA-256 (the plan's `checksum`), and the
        # floor: a plain copy, no hashing, no verify.
        tools.insert(1, ("relocate-b3", run_relocate_blake3))
        tools.append(("cp -r", run_cp))
    case = Local(name, src, scratch) if kind == "local" else S3(name, src, scratch)
    forget_deletions(bench_dir)
    warm(src)
    for run in range(runs):
        # Alternate who goes first so neither always meets a warm (or cold) cache.
        for tool, fn in tools if run % 2 == 0 else tools[::-1]:
            ok, wall, rss = fn(case, run, scratch)
            print(f"{name}\t{tool}\t{run}\t{int(ok)}\t{wall:.3f}\t{rss}\t{size}\t{count}", flush=True)
            print(f"bench.py: {name} {tool} run {run}: {'ok' if ok else 'FAILED'} {wall:.2f}s {rss // 1024} MiB", file=sys.stderr)
    for entry in os.listdir(scratch):
        if entry.startswith("dst-"):
            shutil.rmtree(os.path.join(scratch, entry), ignore_errors=True)
    removed(bench_dir)


def report(path):
    rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
    by = {}
    for name, tool, _, ok, wall, rss, size, count in rows:
        by.setdefault((name, tool), []).append((ok == "1", float(wall), int(rss), int(size), int(count)))
    print(f"{'data set':<12} {'tool':<12} {'ok':>5} {'median s':>9} {'min s':>7} {'max s':>7} {'peak MiB':>9} {'MB/s':>8} {'obj/s':>8}")
    medians = {}
    for (name, tool), rs in by.items():
        good = [r for r in rs if r[0]]
        walls = [r[1] for r in good]
        if not walls:
            print(f"{name:<12} {tool:<12} {0:>2}/{len(rs):<2} all runs failed")
            continue
        med = statistics.median(walls)
        medians[(name, tool)] = med
        size, count = good[0][3], good[0][4]
        print(f"{name:<12} {tool:<12} {len(good):>2}/{len(rs):<2} {med:>9.2f} {min(walls):>7.2f} {max(walls):>7.2f} "
              f"{max(r[2] for r in good) / 1024:>9.0f} {size / med / 1e6:>8.1f} {count / med:>8.0f}")
    for name in sorted({n for n, _ in by}):
        for ours in ("relocate", "relocate-b3"):
            if (name, ours) in medians and (name, "rclone") in medians:
                ratio = medians[(name, "rclone")] / medians[(name, ours)]
                print(f"{name:<12} rclone/{ours} median wall ratio: {ratio:.2f} (>1: relocate faster)")
            if (name, ours) in medians and (name, "cp -r") in medians:
                ratio = medians[(name, ours)] / medians[(name, "cp -r")]
                print(f"{name:<12} {ours}/cp -r median wall ratio: {ratio:.2f} (copy+verify against a plain copy)")


if __name__ == "__main__":
    if sys.argv[1] == "report":
        report(sys.argv[2])
    else:
        measure(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
