"""Forward speed and peak memory from 2^10 to 2^19 nt, and the longest sequence that fits.

The paper's setup: batch 1, forward only, one device, bf16 (autocast) by default. Each
model runs in its own process, so that its peak memory is its own and one model's
out-of-memory leaves nothing behind for the next. Lengths double from 2^--min-exp to
2^--max-exp; a model stops at its first out-of-memory error or at a forward pass longer
than --max-seconds (measured after a warm-up pass at each length, which compiles kernels
and is not timed). With --find-limit, lengths keep doubling past 2^--max-exp until one
of those happens, and the table says the longest length that ran.

    python benchmarks/length_sweep.py --device cuda      # scripts/gpu_check.sh, step lengths
    python benchmarks/length_sweep.py --device cuda --cuda-graphs   # forwards replayed
    .venv/bin/python benchmarks/length_sweep.py --device cpu --max-exp 12 --precision fp32

Peak memory is torch.cuda.max_memory_allocated (GPU) or the growth of the process's peak
resident memory over the load (CPU, a coarser number).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

BASE = "transformer-small"
MODELS = [BASE, "dnahnet-small", "dnahnet-2stage-r32", "default", "mamba2-small"]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args) -> None:
    """One model, every length; one JSON line per length (printed as it is measured)."""
    import torch
    from inference_speed import forward_seconds, load  # the same model loading and forward

    from dnahnet_core.device import keep_freed_memory

    keep_freed_memory()
    device = torch.device(args.device)
    model = load(args.child).to(device)
    if args.cuda_graphs:  # the warm-up pass captures each length's graph, the last one goes
        from dnahnet_core.model.graphs import GraphedForward

        model = GraphedForward(model, precision=args.precision, max_graphs=1)
    loaded = rss_mib()
    exponent = args.min_exp
    while exponent <= args.max_exp or args.find_limit:
        length = 2**exponent
        row = {"model": args.child, "length": length, "precision": args.precision}
        tokens = torch.randint(0, 4, (1, length), generator=torch.Generator().manual_seed(0))
        try:
            tokens = tokens.to(device)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            # the warm-up compiles (and on a GPU autotunes) kernels for new shapes: never
            # the measurement, or compiling decides where a model stops (27.7 s for 1,024 nt
            # of dnahnet-2stage-r32 on an H100)
            warmup, _ = forward_seconds(model, tokens, args.precision)
            first, _ = forward_seconds(model, tokens, args.precision)
            times = [first] if first > args.max_seconds else [first] + [
                forward_seconds(model, tokens, args.precision)[0]
                for _ in range(args.repeats - 1)]
        except torch.cuda.OutOfMemoryError:
            print(json.dumps({**row, "status": "out of memory"}), flush=True)
            return
        except RuntimeError as error:  # a CPU allocation failure
            if "memory" not in str(error).lower():
                raise
            print(json.dumps({**row, "status": "out of memory"}), flush=True)
            return
        seconds = sorted(times)[len(times) // 2]
        row.update(status="ok", seconds=seconds, nt_per_s=length / seconds, warmup_s=warmup)
        if device.type == "cuda":
            row["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        else:
            row["peak_gib"] = (rss_mib() - loaded) / 1024
        print(json.dumps(row), flush=True)
        if seconds > args.max_seconds:
            print(json.dumps({"model": args.child, "length": 2 * length,
                              "precision": args.precision,
                              "status": f"not run: {length:,} nt took {seconds:.1f} s"}),
                  flush=True)
            return
        exponent += 1


def run_model(args, name: str) -> list[dict]:
    cmd = [sys.executable, __file__, "--child", name, "--device", args.device,
           "--precision", args.precision, "--min-exp", str(args.min_exp),
           "--max-exp", str(args.max_exp), "--repeats", str(args.repeats),
           "--max-seconds", str(args.max_seconds)] + (["--find-limit"] if args.find_limit else [])
    cmd += ["--cuda-graphs"] if args.cuda_graphs else []
    proc = subprocess.run(cmd, capture_output=True, text=True)  # its folder is on its path
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        rows.append({"model": name, "status": f"failed: {last}"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--min-exp", type=int, default=10)
    parser.add_argument("--max-exp", type=int, default=19)
    parser.add_argument("--find-limit", action="store_true",
                        help="keep doubling past 2^--max-exp until out of memory or too slow")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=30.0,
                        help="stop a model after a forward pass longer than this")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="replay each forward from a CUDA graph (model.graphs; CUDA only)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.min_exp <= args.max_exp <= 30:
        parser.error("need 1 <= --min-exp <= --max-exp <= 30")
    if args.cuda_graphs and not args.device.startswith("cuda"):
        parser.error("--cuda-graphs needs --device cuda")
    if args.child:
        child(args)
        return
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            parser.error(f"--device {args.device}: no CUDA device is visible")
        machine = torch.cuda.get_device_name(torch.device(args.device))
    else:
        import platform

        machine = platform.processor() or platform.machine()
    started = time.perf_counter()
    rows = [row for name in args.models for row in run_model(args, name)]
    base = {r["length"]: r["seconds"] for r in rows if r["model"] == BASE and r["status"] == "ok"}
    print(f"# {machine}, batch 1, forward only, {args.precision}, "
          + ("replayed from CUDA graphs, " if args.cuda_graphs else "")
          + f"{time.perf_counter() - started:.0f} s")
    print("| model | L | forward s (median) | nt/s | peak memory GiB | vs transformer-small |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if r["status"] != "ok":
            length = f"{r['length']:,}" if "length" in r else ""
            print(f"| {r['model']} | {length} | {r['status']} | | | |")
            continue
        versus = f"{base[r['length']] / r['seconds']:.2f}x" if r["length"] in base else ""
        print(f"| {r['model']} | {r['length']:,} | {r['seconds']:.4f} | {r['nt_per_s']:,.0f} | "
              f"{r['peak_gib']:.2f} | {versus} |")
    print()
    print("| model | longest length that ran | what stopped it |")
    print("|---|---|---|")
    for name in args.models:
        mine = [r for r in rows if r["model"] == name]
        ran = [r["length"] for r in mine if r["status"] == "ok"]
        stop = next((r["status"] for r in mine if r["status"] != "ok"),
                    f"the sweep's end (2^{args.max_exp})")
        print(f"| {name} | {f'{max(ran):,}' if ran else 'none'} | {stop} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
