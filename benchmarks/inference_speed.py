"""Forward speed per nucleotide: dnaHNet (untrained preset and shipped default) vs baselines.

Batch 1, inference mode, forward only, fp32 and bf16 (autocast), as the paper measures
speed. Every model runs in this one process, alternating (model A, B, C, A, B, C, ...) so
that a noisy, shared machine slows all of them alike; the table gives medians and the
time ratio against transformer-small taken from the same run. It also measures this
core's fp32 and bf16 matmul rate (a [L, 256] x [256, 768] product, the shape of our
projections) and reports each model's counted FLOPs (dnahnet model-info's accounting,
with the compression the model actually had) as a share of it.

    taskset -c 0 .venv/bin/python benchmarks/inference_speed.py --threads 1   # make bench
    ... --models default runs/my_run --lengths 8192   # a trained model directory
    python benchmarks/inference_speed.py --device cuda   # on a GPU (scripts/gpu_check.sh)
    python benchmarks/inference_speed.py --device cuda --cuda-graphs   # every model replayed

With --cuda-graphs every model also runs replayed from a CUDA graph, captured once per
length (`dnahnet_core.model.graphs.GraphedForward`; the capture is a warm-up, never
timed): what the GPU itself needs, without the host issuing each op. Its rows say
"CUDA graphs", and their ratio is against transformer-small replayed the same way.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from dnahnet_core.device import keep_freed_memory
from dnahnet_core.model import build_model, load_config, load_model
from dnahnet_core.model.flops import flops_per_nucleotide
from dnahnet_core.model.graphs import GraphedForward
from dnahnet_core.train.precision import autocast

BASE = "transformer-small"
MODELS = [BASE, "dnahnet-small", "default", "mamba2-small"]


def load(name: str):
    """A preset with untrained weights, 'default' (the model shipped with the package) or a
    model directory (a training run or an exported model)."""
    if name == "default" or Path(name).is_dir():
        return load_model(None if name == "default" else name).eval()
    return build_model(load_config(name), seed=0).eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":  # kernels run asynchronously: wait before reading the clock
        torch.cuda.synchronize(device)


def forward_seconds(model, tokens, precision: str) -> tuple[float, list[float]]:
    device = tokens.device
    # as the commands run it: fp32 on CUDA is IEEE float32 (no TF32 in Triton's or cuDNN's
    # products), set for the rest of the process at the first fp32 pass
    with torch.inference_mode(), autocast(device, precision):
        sync(device)
        start = time.perf_counter()
        out = model(tokens)
        sync(device)
        seconds = time.perf_counter() - start
    return seconds, [float(s.compression) for s in out.stages]


def matmul_gflops(dtype: torch.dtype, device: torch.device, rows: int = 8192,
                  repeats: int = 5) -> float:
    a = torch.randn(rows, 256, dtype=dtype, device=device)
    b = torch.randn(256, 768, dtype=dtype, device=device)
    a @ b
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * rows * 256 * 768 / min(times) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[8192, 32768])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"],
                        choices=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--max-seconds", type=float, default=120.0,
                        help="skip a model whose first run at a length took longer than this")
    parser.add_argument("--glibc-default-malloc", action="store_true",
                        help="leave glibc's malloc as it is (see keep_freed_memory)")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="replay every model's forward from a CUDA graph (CUDA only)")
    args = parser.parse_args()
    if args.cuda_graphs and not args.device.startswith("cuda"):
        parser.error("--cuda-graphs needs --device cuda")
    torch.set_num_threads(args.threads)
    if not args.glibc_default_malloc:
        keep_freed_memory()  # as the dnahnet command does
    device = torch.device(args.device)
    models = {name: load(name).to(device) for name in args.models}
    peak = {"fp32": matmul_gflops(torch.float32, device),
            "bf16": matmul_gflops(torch.bfloat16, device)}
    machine = platform.processor() or platform.machine()
    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    print(f"# machine: {machine}, {args.threads} thread(s), "
          f"torch {torch.__version__}; matmul [L,256]x[256,768]: fp32 {peak['fp32']:.0f} "
          f"GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s"
          + ("; eager and replayed from CUDA graphs" if args.cuda_graphs else ""))
    print("| model | L | precision | forward s (median) | µs / nt | MFLOP / nt (counted) "
          "| % of matmul peak | vs transformer-small | compression |")
    print("|---|---|---|---|---|---|---|---|---|")
    for length in args.lengths:
        tokens = torch.randint(0, 4, (1, length), generator=torch.Generator().manual_seed(0))
        tokens = tokens.to(device)
        for precision in args.precisions:
            # (model, replayed from CUDA graphs?): with --cuda-graphs every model both ways
            runs = [(name, graphed) for name in models
                    for graphed in ((False, True) if args.cuda_graphs else (False,))]
            runners = {(name, graphed): GraphedForward(models[name], precision=precision,
                                                       max_graphs=1) if graphed else models[name]
                       for name, graphed in runs}
            for (name, graphed), runner in list(runners.items()):  # warm-up
                if not graphed:
                    forward_seconds(runner, tokens[:, :1024], precision)
                    continue
                try:  # an eager pass and the capture, then a replay
                    forward_seconds(runner, tokens, precision)
                    forward_seconds(runner, tokens, precision)
                except RuntimeError as error:  # a capture that fails costs its rows only
                    print(f"# {name}, {length:,} nt, {precision}, CUDA graphs: failed: "
                          f"{str(error).splitlines()[0]}", flush=True)
                    del runners[name, graphed]
                    runs.remove((name, graphed))
            times: dict[tuple, list[float]] = {run: [] for run in runs}
            ratios: dict[tuple, list[float]] = {}
            for repeat in range(args.repeats):
                for run, runner in runners.items():
                    if repeat and times[run][0] > args.max_seconds:
                        continue
                    seconds, ratios[run] = forward_seconds(runner, tokens, precision)
                    times[run].append(seconds)
            del runners  # the graphs' memory
            for name, graphed in runs:
                seconds = statistics.median(times[name, graphed])
                base = times.get((BASE, graphed))  # transformer-small run the same way
                flops = flops_per_nucleotide(models[name], length,
                                             ratios[name, graphed] or None)["total"]
                share = flops * length / seconds / (peak[precision] * 1e9)
                versus = f"{statistics.median(base) / seconds:.2f}x" if base else ""
                ratio_text = ", ".join(f"{r:.2f}" for r in ratios[name, graphed])
                label = "default (shipped)" if name == "default" else name
                label += ", CUDA graphs" if graphed else ""
                print(f"| {label} | {length:,} | {precision} | {seconds:.3f} | "
                      f"{seconds / length * 1e6:.1f} | {flops / 1e6:.1f} | {100 * share:.0f}% | "
                      f"{versus} | {ratio_text} |", flush=True)


if __name__ == "__main__":
    main()
