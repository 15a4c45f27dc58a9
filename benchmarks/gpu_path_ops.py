"""What one forward asks of the host on the GPU path, counted on a CPU (docs/benchmarks.md,
"Why dnaHNet loses at 8-32 kb on a GPU").

On an H100 a dnaHNet forward of up to 32,768 nt takes 25-60 ms whatever the length: the
GPU waits for the host to issue work. This counts that work without a GPU: the torch ops
of one forward (each at least one kernel launch on CUDA), the calls into mamba-ssm's
kernels (the SSD scan, ~5 Triton launches behind Python-side dispatch, and the gated
norm) and the host syncs (`.item()`: the GPU's queue drains before the host goes on),
also with each stage's inner length fixed (`chunk_widths`, as `model.graphs` captures a
forward: none may be left).
The fast path's two functions are replaced by the pure ones, run outside the count, and
the CPU-only blocking of long Mamba layers is off, so the count is the GPU path's.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gpu_path_ops.py [--length 8192] [MODEL ...]

MODEL: a preset, or `default` (the shipped model). A ratio to track, not a timing.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys

import torch
import torch.nn.functional as F
from inference_speed import load  # the same model loading (a preset, default or a folder)
from torch.utils._python_dispatch import (
    TorchDispatchMode,
    _get_current_dispatch_mode,
    _pop_mode_temporarily,
)

from dnahnet_core.model import fast_path
from dnahnet_core.model.graphs import widths_for
from dnahnet_core.model.norms import RMSNorm
from dnahnet_core.model.ssd import ssd_chunked

MODELS = ["transformer-small", "mamba2-small", "dnahnet-small", "default", "dnahnet-2stage-r32"]
HOST_SYNCS = ("aten._local_scalar_dense.default", "aten.item.default")


class OpCount(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def gpu_path(kernel_calls: collections.Counter):
    """The fast path taken, its kernels done by the pure functions and counted as calls."""

    def outside_count(name, fn):
        def call(*args):
            kernel_calls[name] += 1
            if _get_current_dispatch_mode() is None:
                return fn(*args)
            with _pop_mode_temporarily():
                return fn(*args)
        return call

    def norm(x, weight, eps):
        pure = RMSNorm(weight.shape[0], eps=eps).to(weight)
        pure.weight.data = weight
        return pure._pure(x)

    names = ("enabled_for", "chunk_scan", "gated_rmsnorm", "rmsnorm")
    saved = [getattr(fast_path, name) for name in names]
    fast_path.enabled_for = lambda tensor: True
    fast_path.chunk_scan = outside_count("SSD scan", ssd_chunked)
    fast_path.gated_rmsnorm = outside_count(
        "gated norm", lambda y, z, weight, eps: norm(y * F.silu(z), weight, eps))
    fast_path.rmsnorm = outside_count("norm", norm)
    try:
        yield
    finally:
        for name, function in zip(names, saved, strict=True):
            setattr(fast_path, name, function)


def count(name: str, length: int) -> dict:
    model = load(name)
    for module in model.modules():
        if hasattr(module, "block_length"):  # CPU-only blocking of long Mamba layers: off
            module.block_length = sys.maxsize
    tokens = torch.randint(0, 4, (1, length), generator=torch.Generator().manual_seed(0))
    kernel_calls: collections.Counter = collections.Counter()
    with torch.inference_mode(), gpu_path(kernel_calls):
        widths = widths_for(model(tokens), length, slack=0.125)  # anything done once, too
        kernel_calls.clear()
        with OpCount() as counter:
            model(tokens)
        calls = collections.Counter(kernel_calls)
        with OpCount() as fixed:  # as model.graphs captures it
            model(tokens, chunk_widths=widths)
    return {"model": name, "torch_ops": sum(counter.ops.values()),
            "ssd_calls": calls["SSD scan"], "norm_calls": calls["gated norm"] + calls["norm"],
            "host_syncs": sum(counter.ops[op] for op in HOST_SYNCS),
            "host_syncs_fixed_widths": sum(fixed.ops[op] for op in HOST_SYNCS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=MODELS)
    parser.add_argument("--length", type=int, default=8192)
    args = parser.parse_args()
    print(f"# one forward, batch 1 x {args.length:,} nt, GPU path counted on a CPU")
    print("| model | torch ops | mamba-ssm calls (SSD scan + norms) | host syncs "
          "| host syncs with fixed chunk widths |")
    print("|---|---|---|---|---|")
    for name in args.models:
        row = count(name, args.length)
        print(f"| {name} | {row['torch_ops']:,} | {row['ssd_calls']} + {row['norm_calls']} "
              f"| {row['host_syncs']} | {row['host_syncs_fixed_widths']} |", flush=True)


if __name__ == "__main__":
    main()
