"""Benchmark of `dnahnet prepare` (a benchmark, not a test).

Runs prepare on a pool of genome files with 1 and 2 workers, each in a fresh
process, and reports sequence throughput (MB/s of nucleotides, per worker), the
speed-up from 1 to 2 workers and peak memory (max RSS of the main process and of
any worker). In the same run it times `zcat` / `xzcat` alone on the same files —
the floor for a single worker — and a run on a small subset, to show that peak
memory does not grow with the input.

    .venv/bin/python benchmarks/prepare_speed.py [POOL_DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dnahnet_core.io.compression import detect_compression

DEFAULT_POOL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "pool"

CHILD = r"""
import json, resource, sys, time
from dnahnet_core.data.prepare import PrepareOptions, prepare
inputs, out, workers = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
start = time.perf_counter()
manifest = prepare(inputs, out, PrepareOptions(workers=workers), show_progress=False)
seconds = time.perf_counter() - start
usage = {w: resource.getrusage(getattr(resource, "RUSAGE_" + w)) for w in ("SELF", "CHILDREN")}
rss = {who: u.ru_maxrss / 1024 for who, u in usage.items()}
cpu = sum(u.ru_utime + u.ru_stime for u in usage.values())
rows = open(out + "/genomes.tsv").read().splitlines()[1:]
nucleotides = sum(int(row.split("\t")[5]) for row in rows)
print(json.dumps({"seconds": seconds, "nucleotides": nucleotides, "rss_mib": rss, "cpu": cpu,
                  "fragments": sum(s["fragments"] for s in manifest["splits"].values())}))
"""


def run_prepare(files: list[Path], workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "ds")
        args = [sys.executable, "-c", CHILD, json.dumps([str(f) for f in files]), out]
        done = subprocess.run([*args, str(workers)], capture_output=True, text=True, check=True)
        return json.loads(done.stdout)


def decompress_floor(files: list[Path]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of zcat/xzcat on every file, one after the other."""
    before = os.times()
    start = time.perf_counter()
    for path in files:
        tool = {"gzip": "zcat", "xz": "xzcat", "bz2": "bzcat", "plain": "cat"}
        subprocess.run(
            [tool[detect_compression(path)], str(path)], stdout=subprocess.DEVNULL, check=True
        )
    after = os.times()
    cpu = (
        after.children_user - before.children_user + after.children_system - before.children_system
    )
    return time.perf_counter() - start, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool", nargs="?", type=Path, default=DEFAULT_POOL)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    files = sorted(p for p in args.pool.iterdir() if p.is_file())
    for tool in ("zcat", "xzcat"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found")
    floor, floor_cpu = min(decompress_floor(files) for _ in range(args.repeat))
    runs = {
        w: min((run_prepare(files, w) for _ in range(args.repeat)), key=lambda r: r["seconds"])
        for w in (1, 2)
    }
    small = run_prepare(files[:3], 1)
    mb = runs[1]["nucleotides"] / 1e6
    compressed = sum(p.stat().st_size for p in files) / 1e6
    print(f"pool: {len(files)} files, {compressed:.1f} MB compressed, {mb:.1f} Mbp of sequence")
    print(
        f"zcat/xzcat alone (1 core): {floor:.2f} s wall, {floor_cpu:.2f} s CPU "
        f"= {mb / floor:.1f} MB/s of sequence"
    )
    for workers, run in runs.items():
        rate = mb / run["seconds"]
        peak = max(run["rss_mib"].values())
        print(
            f"prepare --workers {workers}: {run['seconds']:.2f} s wall, {run['cpu']:.2f} s CPU, "
            f"{rate:.1f} MB/s "
            f"({rate / workers:.1f} MB/s per worker), {run['fragments']} fragments, "
            f"peak RSS {peak:.0f} MiB (main {run['rss_mib']['SELF']:.0f}, "
            f"workers {run['rss_mib']['CHILDREN']:.0f})"
        )
    print(
        f"1 worker vs decompression floor: {runs[1]['seconds'] / floor:.2f}x wall, "
        f"{runs[1]['cpu'] / floor_cpu:.2f}x CPU"
    )
    print(
        f"speed-up 1 -> 2 workers: {runs[1]['seconds'] / runs[2]['seconds']:.2f}x wall "
        f"(CPU: {runs[2]['cpu']:.2f} s vs {runs[1]['cpu']:.2f} s; "
        f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    print(
        f"peak RSS on a {small['nucleotides'] / 1e6:.1f} Mbp subset (3 files): "
        f"{max(small['rss_mib'].values()):.0f} MiB"
    )


if __name__ == "__main__":
    main()
