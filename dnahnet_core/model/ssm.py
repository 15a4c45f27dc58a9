"""The Mamba2 mixer: input projection, causal depthwise conv, SSD scan, gated RMSNorm.

State for incremental inference: the last (d_conv - 1) conv inputs and the SSM state.
`valid` [b, t] marks real positions (padding is only ever at the right end); padded
positions have dt = 0, so they never change the state.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dnahnet_core.model import fast_path
from dnahnet_core.model.config import SSMConfig
from dnahnet_core.model.norms import GatedRMSNorm
from dnahnet_core.model.ssd import ssd_scan


class MambaState(NamedTuple):
    conv: torch.Tensor  # [b, d_conv - 1, conv_dim] the last conv inputs
    ssm: torch.Tensor  # [b, heads, headdim, d_state]


def last_valid_rows(full: torch.Tensor, n_valid: torch.Tensor, count: int) -> torch.Tensor:
    """From `full` [b, count + t, c], the `count` rows ending at each element's last valid row."""
    index = n_valid[:, None] + torch.arange(count, device=full.device)[None]
    return full.gather(1, index[..., None].expand(-1, -1, full.shape[-1]))


def causal_depthwise_conv(full: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
    """Depthwise causal conv over time of `full` [b, k - 1 + t, c] (history first) -> [b, t, c].

    Written as k shifted multiply-adds (one fused addcmul each): on CPU this is many
    times faster than F.conv1d's depthwise backward, and it is the same arithmetic.
    """
    if full.device.type == "cpu" and full.dtype == torch.bfloat16:
        # bf16 addcmul on a CPU runs ~3x slower than fp32 and rounds at every tap: add in
        # fp32 and round once
        return causal_depthwise_conv(full.float(), weight, bias).to(full.dtype)
    k = weight.shape[-1]
    t = full.shape[1] - (k - 1)
    taps = weight[:, 0].to(full.dtype)  # [c, k]
    out = torch.addcmul(bias.to(full.dtype), full[:, :t], taps[:, 0])
    for i in range(1, k):
        out = out.addcmul_(full[:, i : i + t], taps[:, i])
    return out


def conv_silu(x: torch.Tensor, history: torch.Tensor | None, weight: torch.Tensor,
              bias: torch.Tensor) -> torch.Tensor:
    """silu(causal depthwise conv) of x [b, t, c] continuing `history` [b, k - 1, c] (None:
    a fresh sequence, zeros) -> [b, t, c]. The kernel is chosen here: one Triton kernel
    on the fast path, else `causal_depthwise_conv` and F.silu."""
    if fast_path.enabled_for(x):
        return fast_path.causal_conv_silu(x, history, weight, bias)
    return F.silu(causal_depthwise_conv(with_history(x, history, weight.shape[-1]), weight, bias))


def with_history(x: torch.Tensor, history: torch.Tensor | None, k: int) -> torch.Tensor:
    """[history; x] along time, the history zeros when None."""
    if history is None:
        history = x.new_zeros(x.shape[0], k - 1, x.shape[-1])
    return torch.cat([history, x], dim=1)


def causal_depthwise_conv_reference(full, weight, bias):
    """The same with F.conv1d (the definition; tests compare the two)."""
    out = F.conv1d(full.transpose(1, 2), weight, bias, groups=weight.shape[0])
    return out.transpose(1, 2)


class Mamba2(nn.Module):
    def __init__(self, d_model: int, cfg: SSMConfig):
        super().__init__()
        self.d_inner = cfg.expand * d_model
        if self.d_inner % cfg.headdim:
            raise ValueError(
                f"expand*d_model={self.d_inner} not divisible by headdim={cfg.headdim}"
            )
        self.nheads = self.d_inner // cfg.headdim
        self.headdim, self.d_state, self.d_conv = cfg.headdim, cfg.d_state, cfg.d_conv
        self.chunk_size = cfg.chunk_size
        self.conv_dim = self.d_inner + 2 * cfg.d_state
        self.in_proj = nn.Linear(
            d_model, 2 * self.d_inner + 2 * cfg.d_state + self.nheads, bias=False
        )
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, cfg.d_conv, groups=self.conv_dim)
        dt = torch.exp(torch.rand(self.nheads) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log = nn.Parameter(torch.log(torch.empty(self.nheads).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm = GatedRMSNorm(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def zero_state(self, u: torch.Tensor, requires_grad: bool = False) -> MambaState:
        """The state before any input (what ``state=None`` means), for a batch like ``u``."""
        b, device = u.shape[0], u.device.type
        # the conv inputs are the input projection's output: autocast's dtype under autocast
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else u.dtype
        return MambaState(
            u.new_zeros(b, self.d_conv - 1, self.conv_dim, dtype=dtype,
                        requires_grad=requires_grad),
            u.new_zeros(b, self.nheads, self.headdim, self.d_state, dtype=torch.float32,
                        requires_grad=requires_grad),
        )

    def forward(self, u: torch.Tensor, valid: torch.Tensor, state: MambaState | None = None,
                return_state: bool = False):
        b, t, _ = u.shape
        z, conv_in, dt = torch.split(
            self.in_proj(u), [self.d_inner, self.conv_dim, self.nheads], dim=-1
        )
        history, ssm_state = (None, None) if state is None else (state.conv.to(conv_in.dtype),
                                                                  state.ssm)
        x, B, C = torch.split(conv_silu(conv_in, history, self.conv1d.weight, self.conv1d.bias),
                              [self.d_inner, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(dt.float() + self.dt_bias) * valid[..., None]
        x = x.reshape(b, t, self.nheads, self.headdim)
        y, ssm_state = ssd_scan(
            x,
            dt,
            -torch.exp(self.A_log.float()),
            B.unsqueeze(2),
            C.unsqueeze(2),
            self.chunk_size,
            ssm_state,
        )
        y = y + x * self.D[:, None].to(x.dtype)
        y = self.norm(y.reshape(b, t, self.d_inner), z)
        if not return_state:
            return self.out_proj(y), None
        conv_state = last_valid_rows(with_history(conv_in, history, self.d_conv), valid.sum(1),
                                     self.d_conv - 1)
        return self.out_proj(y), MambaState(conv_state, ssm_state)
