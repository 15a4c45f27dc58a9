"""The mamba-ssm (Triton, CUDA) back end, used when CUDA and `mamba_ssm` import.

Only this module touches mamba_ssm (and `triton_conv`, our own Triton kernel for Mamba2's
conv); the pure PyTorch path never depends on either.
Set DNAHNET_PURE_TORCH=1 to force the pure path (e.g. to compare the two).
"""

from __future__ import annotations

import functools
import os

import torch


@functools.cache
def available() -> bool:
    if os.environ.get("DNAHNET_PURE_TORCH") == "1" or not torch.cuda.is_available():
        return False
    try:
        from mamba_ssm.ops.triton.layernorm_gated import rmsnorm_fn  # noqa: F401
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined  # noqa: F401
    except Exception:  # any import failure (missing, no CUDA extension) means: not available
        return False
    return True


def enabled_for(tensor: torch.Tensor) -> bool:
    return tensor.is_cuda and available()


# CUDA caps a grid's second dimension at 65,535 blocks, and mamba-ssm's SSD kernels put
# batch x chunks there: a longer scan fails with "Triton Error [CUDA]: invalid argument"
# (4,194,304 nt at chunk size 64 on an H100), so it runs in pieces, each starting from the
# state the last one ended in.
GRID_ROWS = 65_535


def _combined():
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined

    return mamba_chunk_scan_combined


def chunk_scan(x, dt, A, B, C, chunk_size, initial_state):
    """SSD scan on mamba-ssm's kernels; same contract as `ssd.ssd_scan`."""
    batch, length = x.shape[:2]
    if batch > GRID_ROWS:  # rows are independent
        parts = [
            chunk_scan(x[i : i + GRID_ROWS], dt[i : i + GRID_ROWS], A, B[i : i + GRID_ROWS],
                       C[i : i + GRID_ROWS], chunk_size,
                       None if initial_state is None else initial_state[i : i + GRID_ROWS])
            for i in range(0, batch, GRID_ROWS)
        ]
        return torch.cat([y for y, _ in parts]), torch.cat([s for _, s in parts])
    piece = GRID_ROWS // batch * chunk_size  # whole chunks: the same chunking as one call
    scan = _combined()
    ys, state = [], initial_state
    for start in range(0, max(length, 1), piece):
        window = slice(start, start + piece)
        y, state = scan(
            *(t[:, window].contiguous() for t in (x, dt)), A,
            *(t[:, window].contiguous() for t in (B, C)),
            chunk_size=chunk_size,
            initial_states=None if state is None else state.contiguous(),
            return_final_states=True,
        )
        ys.append(y)
    return (ys[0] if len(ys) == 1 else torch.cat(ys, dim=1)), state


def causal_conv_silu(x, history, weight, bias):
    """Mamba2's conv and SiLU in one Triton kernel each way: ours (`triton_conv`), since
    mamba-ssm leaves this conv to the causal-conv1d CUDA extension; contract of
    `ssm.conv_silu`."""
    from dnahnet_core.model.triton_conv import causal_conv_silu as kernel

    k = weight.shape[-1]
    if history is None:  # zeros: the kernel reads k - 1 zero rows without a copy
        return kernel(x, weight, bias, lead=k - 1)
    return kernel(torch.cat([history, x], dim=1), weight, bias, lead=0)


def gated_rmsnorm(y, z, weight, eps):
    from mamba_ssm.ops.triton.layernorm_gated import rmsnorm_fn

    return rmsnorm_fn(y, weight, None, z=z, eps=eps, norm_before_gate=False)


def rmsnorm(x, weight, eps):
    """RMSNorm in one Triton kernel each way (the pure one is ~8 torch ops, each a launch)."""
    from mamba_ssm.ops.triton.layernorm_gated import rmsnorm_fn

    return rmsnorm_fn(x, weight, None, eps=eps)
