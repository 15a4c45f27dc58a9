"""RMSNorm and the gated RMSNorm of Mamba2 (norm of y * silu(z))."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from dnahnet_core.model import fast_path

        if fast_path.enabled_for(x):
            return fast_path.rmsnorm(x, self.weight, self.eps)
        return self._pure(x)

    def _pure(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x * self.weight.float()).to(dtype)


class GatedRMSNorm(RMSNorm):
    """RMSNorm(y * silu(z)), the gate applied before normalising (Mamba2's default)."""

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        from dnahnet_core.model import fast_path

        if fast_path.enabled_for(y):
            return fast_path.gated_rmsnorm(y, z, self.weight, self.eps)
        return self._pure(y * F.silu(z))
