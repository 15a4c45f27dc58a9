"""Where a forward's time goes: is the GPU busy, or waiting for the host? (docs/gpu.md)

On an H100 a dnaHNet forward of up to 32,768 nt took 25-60 ms whatever the length, which
says the host, not the GPU, sets the pace; `benchmarks/gpu_path_ops.py` counts the host's
work on a CPU. This measures it where it happens: for each model and length, bf16, batch 1,
forward only, after a warm-up, `torch.profiler` over a few forwards gives the wall time
per forward, the time the GPU spent in kernels, their share of the wall time (the rest the
GPU waited), the kernels launched and the host syncs (CUDA synchronisations and
device-to-host copies), then the ops that took the most host time.

    python benchmarks/gpu_profile.py --device cuda       # scripts/gpu_check.sh, step profile
    .venv/bin/python benchmarks/gpu_profile.py --device cpu --models dnahnet-tiny --lengths 1024

On a CPU there is no GPU time: the table has the wall time and the ops only.
"""

from __future__ import annotations

import argparse
import time

import torch
from inference_speed import load  # the same model loading (a preset, default or a folder)
from torch.profiler import ProfilerActivity, profile

from dnahnet_core.train.precision import autocast

MODELS = ["transformer-small", "mamba2-small", "dnahnet-small", "default"]
LAUNCHES = ("cudaLaunchKernel", "cuLaunchKernel", "cuLaunchKernelEx", "cudaLaunchKernelExC")
# the CUDA synchronisations, and the device-to-host reads that wait for them (.item())
SYNCS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize",
         "aten::_local_scalar_dense")


def profile_forwards(model, length: int, device: torch.device, precision: str, repeats: int):
    tokens = torch.randint(0, 4, (1, length), generator=torch.Generator().manual_seed(0))
    tokens = tokens.to(device)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)

    def forwards(n: int) -> None:
        with torch.inference_mode(), autocast(device, precision):
            for _ in range(n):
                model(tokens)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    forwards(2)  # compiling and autotuning kernels: not measured
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        forwards(repeats)
    wall = (time.perf_counter() - start) / repeats
    averages = prof.key_averages()
    calls = {e.key: e.count for e in averages}
    gpu_us = sum(getattr(e, "self_device_time_total", 0) for e in averages
                 if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA)
    row = {
        "wall_ms": wall * 1e3,
        "gpu_ms": gpu_us / 1e3 / repeats if device.type == "cuda" else None,
        "launches": sum(calls.get(k, 0) for k in LAUNCHES) / repeats,
        "syncs": sum(calls.get(k, 0) for k in SYNCS) / repeats,
        "ops": sum(e.count for e in averages if e.key.startswith("aten::")) / repeats,
        "top": sorted(averages, key=lambda e: e.self_cpu_time_total, reverse=True)[:12],
    }
    return row


def top_table(events, repeats: int) -> list[str]:
    lines = ["| op | calls per forward | host ms per forward | GPU ms per forward |",
             "|---|---|---|---|"]
    for e in events:
        gpu = getattr(e, "self_device_time_total", 0) / 1e3 / repeats
        lines.append(f"| `{e.key[:60]}` | {e.count / repeats:.0f} | "
                     f"{e.self_cpu_time_total / 1e3 / repeats:.2f} | {gpu:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--lengths", nargs="+", type=int, default=[8192, 32768])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# {name}, batch 1, forward only, {args.precision}, mean of {args.repeats} "
          f"forwards after 2 unmeasured")
    print("| model | L | wall ms | GPU kernels ms | GPU busy | kernels launched | host syncs "
          "| aten calls (nested too) |")
    print("|---|---|---|---|---|---|---|---|")
    tables = []
    for model_name in args.models:
        model = load(model_name).to(device)
        for length in args.lengths:
            row = profile_forwards(model, length, device, args.precision, args.repeats)
            gpu = row["gpu_ms"]
            busy = "-" if gpu is None else f"{gpu / row['wall_ms']:.0%}"
            print(f"| {model_name} | {length:,} | {row['wall_ms']:.1f} | "
                  f"{'-' if gpu is None else f'{gpu:.1f}'} | {busy} | {row['launches']:.0f} | "
                  f"{row['syncs']:.0f} | {row['ops']:.0f} |", flush=True)
            tables.append((model_name, length, row["top"]))
        del model
    for model_name, length, events in tables:
        print(f"\n# {model_name}, {length:,} nt: the ops with the most host time\n")
        print("\n".join(top_table(events, args.repeats)))


if __name__ == "__main__":
    main()
