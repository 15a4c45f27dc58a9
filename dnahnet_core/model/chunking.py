"""Dynamic chunking: routing, chunk (downsample), dechunk (EMA + upsample), ratio loss.

- Routing: p_t = (1 - cos(W_q h_t, W_k h_{t-1})) / 2, p_0 = 1; boundary b_t = p_t >= 0.5.
- Chunk: keep the hidden states at boundaries, left-aligned per batch element, padded.
- Dechunk: e_j = P_j c_j + (1 - P_j) e_{j-1} over chunks (P clamped to [1e-4, 1-1e-4]),
  run as an SSD scan with one state dimension, then each position t receives the
  value of its chunk c(t).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dnahnet_core.model.ssd import ssd_scan

P_MIN, P_MAX = 1e-4, 1 - 1e-4


class RouterState(NamedTuple):
    last: torch.Tensor  # [b, d] the last valid hidden state seen
    seen: torch.Tensor  # [b] bool: any position seen yet (else the next one is p = 1)


class Router(nn.Module):
    def __init__(self, d_model: int):
        super().__init__()
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        with torch.no_grad():
            self.q_proj.weight.copy_(torch.eye(d_model))
            self.k_proj.weight.copy_(torch.eye(d_model))

    def forward(self, h: torch.Tensor, valid: torch.Tensor, state: RouterState | None = None,
                return_state: bool = False):
        """Boundary probabilities p [b, t] and the state (last valid hidden state)."""
        b, t, d = h.shape
        before = h.new_zeros(b, 1, d) if state is None else state.last[:, None].to(h.dtype)
        previous = torch.cat([before, h[:, :-1]], dim=1)
        cos = F.cosine_similarity(self.q_proj(h).float(), self.k_proj(previous).float(), dim=-1)
        p = ((1 - cos) / 2).clamp(0, 1)
        if state is None:
            p = torch.cat([torch.ones_like(p[:, :1]), p[:, 1:]], 1)
        else:
            p = torch.cat([torch.where(state.seen, p[:, 0], 1.0)[:, None], p[:, 1:]], 1)
        if not return_state:
            return p, None
        n_valid = valid.sum(1)
        last = h.gather(1, (n_valid - 1).clamp(min=0)[:, None, None].expand(-1, 1, d))[:, 0]
        if state is not None:
            last = torch.where((n_valid > 0)[:, None], last, state.last.to(last.dtype))
        seen = n_valid > 0 if state is None else state.seen | (n_valid > 0)
        return p, RouterState(last, seen)


def chunk(h: torch.Tensor, boundary: torch.Tensor, width: int | None = None):
    """Gather boundary positions, left-aligned.

    Returns chunks [b, c, d], chunk_valid [b, c] and the source positions [b, c]. c is the
    largest chunk count of the batch, which the host must read from the device (a sync),
    or ``width`` when given (at most t): a static shape, the chunks beyond it dropped (the
    caller checks the counts, ``StageStats.chunk_count``).
    """
    counts = boundary.sum(1)
    if width is None:
        width = max(int(counts.max()), 1)
    width = min(width, boundary.shape[1])
    order = torch.argsort((~boundary).to(torch.int8), dim=1, stable=True)[:, :width]
    chunk_valid = torch.arange(width, device=h.device)[None] < counts[:, None]
    chunks = h.gather(1, order[..., None].expand(-1, -1, h.shape[-1]))
    return chunks, chunk_valid, order


def ema_scan(
    values: torch.Tensor, p: torch.Tensor, valid: torch.Tensor, initial: torch.Tensor | None
):
    """e_j = P_j v_j + (1 - P_j) e_{j-1}; invalid steps keep e. Returns (e [b,c,d], last [b,d])."""
    b, c, d = values.shape
    heads = d // 64 if d % 64 == 0 else 1
    P = p.float().clamp(P_MIN, P_MAX)
    dt = torch.where(valid, -torch.log1p(-P), torch.zeros_like(P))  # exp(-dt) = 1 - P
    x = torch.where(valid[..., None], values.float() / dt.clamp(min=P_MIN)[..., None], 0.0)
    init = None if initial is None else initial.float().view(b, heads, d // heads, 1)
    e, last = ssd_scan(
        x.view(b, c, heads, d // heads),
        dt[..., None].expand(b, c, heads),
        -torch.ones(heads, device=values.device),
        P[:, :, None, None],
        torch.ones_like(P)[:, :, None, None],
        chunk_size=64,
        initial_state=init,
    )
    return e.reshape(b, c, d).to(values.dtype), last.reshape(b, d).to(values.dtype)


def ema_reference(values, p, valid, initial):
    """The same EMA one chunk at a time (slow; for tests). Returns (e, last)."""
    b, c, d = values.shape
    P = p.float().clamp(P_MIN, P_MAX)
    e = values.new_zeros(b, d).float() if initial is None else initial.float()
    out = []
    for j in range(c):
        step = P[:, j, None] * values[:, j].float() + (1 - P[:, j, None]) * e
        e = torch.where(valid[:, j, None], step, e)
        out.append(e)
    return torch.stack(out, 1).to(values.dtype), e.to(values.dtype)


def dechunk(chunk_out, chunk_p, chunk_valid, boundary, state_last=None):
    """Smooth over chunks, then give each position its chunk's value. Returns (out, last)."""
    smoothed, last = ema_scan(chunk_out, chunk_p, chunk_valid, state_last)
    chunk_of = torch.cumsum(boundary.long(), dim=1) - 1  # [b, t]; -1 before the first boundary
    # at most the last chunk: with a fixed width (`chunk`) a row may have more boundaries
    # than chunks, and an index past the end would be a device-side error on CUDA
    within = chunk_of.clamp(0, smoothed.shape[1] - 1)
    out = smoothed.gather(1, within[..., None].expand(-1, -1, smoothed.shape[-1]))
    if state_last is not None:  # positions continuing the previous block's last chunk
        out = torch.where((chunk_of < 0)[..., None], state_last[:, None].to(out.dtype), out)
    return out, last


def straight_through(p: torch.Tensor) -> torch.Tensor:
    """1 in the forward pass, gradient of p in the backward pass."""
    return p + (1 - p).detach()


def ratio_loss(p: torch.Tensor, boundary: torch.Tensor, valid: torch.Tensor, ratio: float):
    """L_rate = R/(R-1) ((R-1) F G + (1-F)(1-G)); F selected fraction, G mean probability."""
    n = valid.sum().clamp(min=1)
    F_ = (boundary & valid).sum() / n
    G = (p * valid).sum() / n
    return ratio / (ratio - 1) * ((ratio - 1) * F_ * G + (1 - F_) * (1 - G)), F_, G
