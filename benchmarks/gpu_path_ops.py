"""What one forward asks of the host on the GPU path, counted on a CPU (docs/benchmarks.md,
"Why dnaHNet loses at 8-32 kb on a GPU").

On an H100 a dnaHNet forward of up to 32,768 nt takes 25-60 ms whatever the length: the
GPU waits for the host to issue work. This counts that work without a GPU: the torch ops
of one forward (each at least one kernel launch on CUDA), the calls into the fast path's
Triton kernels (mamba-ssm's SSD scan, ~5 launches behind Python-side dispatch, and its
norms; our Mamba2 conv, one launch), the host syncs (`.item()`: the GPU's queue drains
before the host goes on), also with each stage's inner length fixed (`chunk_widths`, as
`model.graphs` captures a forward: none may be left), and the bytes that the ops and the
kernel calls read and write at the least: what bounds a replayed forward, where the host
no longer sets the pace (in fp32 as counted here; bf16 activations move about half).
The fast path's functions are replaced by the pure ones, run outside the count, and
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
import torch.utils._pytree as pytree
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
from dnahnet_core.model.ssm import causal_depthwise_conv, with_history

MODELS = ["transformer-small", "mamba2-small", "dnahnet-small", "default", "dnahnet-2stage-r32"]
HOST_SYNCS = ("aten._local_scalar_dense.default", "aten.item.default")


def tensor_bytes(*values) -> int:
    return sum(t.numel() * t.element_size() for t in pytree.tree_leaves(values)
               if isinstance(t, torch.Tensor))


class OpCount(TorchDispatchMode):
    """Every torch op, and the bytes the ops that are not views read and write (each
    input and output once: what a kernel moves at the least, caches aside)."""

    def __init__(self):
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func)] += 1
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            self.bytes += tensor_bytes(args, kwargs, out)
        return out


@contextlib.contextmanager
def gpu_path(kernel_calls: collections.Counter):
    """The fast path taken, its kernels done by the pure functions and counted as calls
    (and the bytes of their inputs and outputs under "bytes")."""

    def outside_count(name, fn):
        def call(*args):
            kernel_calls[name] += 1
            if _get_current_dispatch_mode() is None:
                out = fn(*args)
            else:
                with _pop_mode_temporarily():
                    out = fn(*args)
            kernel_calls["bytes"] += tensor_bytes(args, out)
            return out
        return call

    def norm(x, weight, eps):
        pure = RMSNorm(weight.shape[0], eps=eps).to(weight)
        pure.weight.data = weight
        return pure._pure(x)

    def conv(x, history, weight, bias):
        return F.silu(causal_depthwise_conv(with_history(x, history, weight.shape[-1]), weight,
                                            bias))

    names = ("enabled_for", "chunk_scan", "gated_rmsnorm", "rmsnorm", "causal_conv_silu")
    saved = [getattr(fast_path, name) for name in names]
    fast_path.enabled_for = lambda tensor: True
    fast_path.chunk_scan = outside_count("SSD scan", ssd_chunked)
    fast_path.gated_rmsnorm = outside_count(
        "gated norm", lambda y, z, weight, eps: norm(y * F.silu(z), weight, eps))
    fast_path.rmsnorm = outside_count("norm", norm)
    fast_path.causal_conv_silu = outside_count("conv", conv)
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
            "conv_calls": calls["conv"], "megabytes": (counter.bytes + calls["bytes"]) / 1e6,
            "host_syncs": sum(counter.ops[op] for op in HOST_SYNCS),
            "host_syncs_fixed_widths": sum(fixed.ops[op] for op in HOST_SYNCS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=MODELS)
    parser.add_argument("--length", type=int, default=8192)
    args = parser.parse_args()
    print(f"# one forward, batch 1 x {args.length:,} nt, GPU path counted on a CPU")
    print("| model | torch ops | kernel calls (SSD scan + norms + conv) | MB moved (fp32) "
          "| host syncs | host syncs with fixed chunk widths |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        row = count(name, args.length)
        print(f"| {name} | {row['torch_ops']:,} "
              f"| {row['ssd_calls']} + {row['norm_calls']} + {row['conv_calls']} "
              f"| {row['megabytes']:,.0f} "
              f"| {row['host_syncs']} | {row['host_syncs_fixed_widths']} |", flush=True)


if __name__ == "__main__":
    main()
