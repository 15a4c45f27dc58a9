"""The mamba-ssm (Triton, CUDA) back end, used when CUDA and `mamba_ssm` import.

Only this module touches mamba_ssm; the pure PyTorch path never depends on it.
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


def chunk_scan(x, dt, A, B, C, chunk_size, initial_state):
    """SSD scan on mamba-ssm's kernels; same contract as `ssd.ssd_scan`."""
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined

    x, dt, B, C = (t.contiguous() for t in (x, dt, B, C))
    if initial_state is not None:
        initial_state = initial_state.contiguous()
    y, final = mamba_chunk_scan_combined(
        x,
        dt,
        A,
        B,
        C,
        chunk_size=chunk_size,
        initial_states=initial_state,
        return_final_states=True,
    )
    return y, final


def gated_rmsnorm(y, z, weight, eps):
    from mamba_ssm.ops.triton.layernorm_gated import rmsnorm_fn

    return rmsnorm_fn(y, weight, None, z=z, eps=eps, norm_before_gate=False)
