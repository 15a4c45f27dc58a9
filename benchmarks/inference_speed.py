"""Forward time per nucleotide: dnahnet-small vs transformer-small vs mamba2-small.

Batch 1, one process, inference mode, untrained weights (speed does not depend on
training, except through the compression ratio: untrained routing is reported, and the
analytic FLOPs use the target ratios). Prints a markdown table; medians of --repeats.

    python benchmarks/inference_speed.py [--lengths 8192 32768 131072] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from dnahnet_core.model import build_model, load_config
from dnahnet_core.model.flops import flops_per_nucleotide

MODELS = ["transformer-small", "dnahnet-small", "mamba2-small"]  # transformer first: the base


def time_forward(model, length: int, repeats: int) -> tuple[float, list[float]]:
    tokens = torch.randint(0, 4, (1, length), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = model(tokens[:, :1024])  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = model(tokens)
            times.append(time.perf_counter() - start)
    return statistics.median(times), [s.compression for s in out.stages]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[8192, 32768, 131072])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=120.0,
        help="skip a run whose extrapolated time exceeds this",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# machine: {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"torch {torch.__version__}"
    )
    print("| model | L | forward s (median) | µs / nt | MFLOP / nt | vs transformer | ratios |")
    print("|---|---|---|---|---|---|---|")
    results: dict[tuple[str, int], float] = {}
    for length in args.lengths:
        for name in args.models:
            model = build_model(load_config(name)).eval()
            flops = flops_per_nucleotide(model, length)["total"] / 1e6
            previous = [(n, s) for (m, n), s in results.items() if m == name]
            if previous:
                n0, s0 = max(previous)
                exponent = 2 if name.startswith("transformer") else 1
                estimate = s0 * (length / n0) ** exponent
                if estimate > args.max_seconds:
                    print(
                        f"| {name} | {length:,} | skipped (est. {estimate:.0f} s) | | "
                        f"{flops:.1f} | | |"
                    )
                    continue
            repeats = args.repeats if length <= 32768 else 1
            seconds, ratios = time_forward(model, length, repeats)
            results[(name, length)] = seconds
            base = results.get(("transformer-small", length))
            versus = f"{base / seconds:.2f}x" if base else ""
            ratio_text = ", ".join(f"{r:.2f}" for r in ratios)
            print(
                f"| {name} | {length:,} | {seconds:.3f} | {seconds / length * 1e6:.1f} | "
                f"{flops:.1f} | {versus} | {ratio_text} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
