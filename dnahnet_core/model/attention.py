"""Causal multi-head attention with RoPE, and the SwiGLU MLP.

With a `window` W, a query at position i sees keys at positions (i - W, i]. Without a
window (the innermost, most compressed level) attention is global.

Kernels, chosen by `Attention.forward`:
- `sliding_window_attention`: a fresh sequence with a window. The first W queries are
  plain causal attention; every later block of `block` queries attends to the W + block
  keys that end with it, under one band mask shared by all blocks. The work is
  (W + block) / W of the band's (1.125x with the default block W / 8), O(L * W) in time
  and memory, never an L x L matrix.
- `masked_attention`: continuing from a state (cached keys, per-element positions,
  padding that may sit between cached and new keys): the same blocks with explicit masks.
- `attention_reference`: the dense masked definition; tests compare both kernels with it.

Tensors are head-major and contiguous, [b, h, t, d], which is what SDPA runs fastest on.

Incremental state (`AttentionState`): the keys/values still reachable (rotary already
applied), their positions and validity, and each element's next position. Positions are
per batch element because inner levels see a different number of chunks per element.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class AttentionState(NamedTuple):
    k: torch.Tensor  # [b, h, s, d]
    v: torch.Tensor  # [b, h, s, d]
    pos: torch.Tensor  # [b, s] position of each cached key
    valid: torch.Tensor  # [b, s] bool
    next_pos: torch.Tensor  # [b] position of the next new token


def rotary_tables(positions: torch.Tensor, head_dim: int, base: float, dtype: torch.dtype):
    """cos, sin for `positions` ([t] or [b, t]), shaped to broadcast over [b, h, t, d/2]."""
    half = head_dim // 2
    freqs = base ** (-torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angles = positions.float()[..., None] * freqs  # [t, half] or [b, t, half]
    if angles.dim() == 3:
        angles = angles[:, None]  # [b, 1, t, half]
    return torch.cos(angles).to(dtype), torch.sin(angles).to(dtype)


def rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of x [b, h, t, d]."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def band_mask(window: int, block: int, device) -> torch.Tensor:
    """[block, window + block] bool: query i of a block sees key j of its span.

    The span of a block starting at position s is [s - window, s + block), so query
    s + i sees key s - window + j iff i < j <= i + window.
    """
    i = torch.arange(block, device=device)[:, None]
    j = torch.arange(window + block, device=device)[None]
    return (j > i) & (j <= i + window)


def sliding_window_attention(q, k, v, window: int, block: int | None = None,
                             blocks_per_call: int = 32):
    """Causal attention with a window, for a fresh sequence; q, k, v [b, h, t, d]."""
    b, h, t, d = q.shape
    head = min(t, window)
    outputs = [F.scaled_dot_product_attention(
        q[:, :, :head], k[:, :, :head], v[:, :, :head], is_causal=True
    )]
    if t > window:
        block = block or max(window // 8, 1)
        mask = band_mask(window, block, q.device)
        pad = (-(t - window)) % block
        if pad:
            q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
        # groups of blocks per SDPA call keep the copied key spans bounded in memory
        span = blocks_per_call * block
        for start in range(window, t + pad, span):
            stop = min(start + span, t + pad)
            n = (stop - start) // block
            keys = k[:, :, start - window : stop].unfold(2, window + block, block)
            values = v[:, :, start - window : stop].unfold(2, window + block, block)
            out = F.scaled_dot_product_attention(
                q[:, :, start:stop].reshape(b, h * n, block, d),
                keys.transpose(-1, -2).reshape(b, h * n, window + block, d),
                values.transpose(-1, -2).reshape(b, h * n, window + block, d),
                attn_mask=mask,
            )
            # reshape: CUDA's SDPA kernels return a transposed, non-contiguous layout
            outputs.append(out.reshape(b, h, n * block, d))
    return torch.cat(outputs, dim=2)[:, :, :t]


def _allowed(q_pos, k_pos, k_valid, window):
    """[b, tq, tk] bool: key valid, not in the future, inside the window."""
    allowed = k_valid[:, None, :] & (k_pos[:, None, :] <= q_pos[:, :, None])
    if window is not None:
        allowed &= q_pos[:, :, None] - k_pos[:, None, :] < window
    return allowed


def masked_attention(q, q_pos, keys, values, key_pos, key_valid, window, cached):
    """Attention of new queries on cached + new keys, one block of queries at a time.

    q [b, h, t, d]; keys/values [b, h, cached + t, d]; positions per element. Cached keys
    (trimmed to the window, maybe interleaved with padding) precede every new key, so only
    the first `window` queries can see them; a block of W/8 queries sees the new keys of
    its window: about 1.125x the band's work, as in `sliding_window_attention`.
    """
    t = q.shape[2]
    block = t if window is None else max(window // 8, 1)
    outputs = []
    for start in range(0, t, block):
        stop = min(start + block, t)
        # the keys a block can see are one range (slices, not gathers): all cached keys and
        # the new ones up to the block's end while start < window, else the window's new keys
        first = 0 if window is None or start < window else cached + start - window + 1
        keys_seen = slice(first, cached + stop)
        allowed = _allowed(q_pos[:, start:stop], key_pos[:, keys_seen], key_valid[:, keys_seen],
                           window)
        # a padded query attends to itself, so no row is empty (no NaN)
        own = torch.arange(cached + start - first, cached + stop - first, device=q.device)
        allowed[:, torch.arange(stop - start, device=q.device), own] = True
        outputs.append(F.scaled_dot_product_attention(
            q[:, :, start:stop], keys[:, :, keys_seen], values[:, :, keys_seen],
            attn_mask=allowed[:, None]
        ))
    return torch.cat(outputs, dim=2)


def attention_reference(q, q_pos, keys, values, key_pos, key_valid, window):
    """The definition, densely: softmax over allowed keys (tests only; O(t * keys))."""
    allowed = _allowed(q_pos, key_pos, key_valid, window)[:, None]
    scores = (q.float() @ keys.float().transpose(-1, -2)) / q.shape[-1] ** 0.5
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1).nan_to_num(0.0)
    return (weights @ values.float()).to(q.dtype)


def _cpu_bf16_training(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.bfloat16 and torch.is_grad_enabled()


class Attention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, window: int | None, rope_base: float):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} not divisible by num_heads={num_heads}")
        self.num_heads, self.head_dim = num_heads, d_model // num_heads
        self.window, self.rope_base = window, rope_base
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)

    def project(self, x: torch.Tensor, positions: torch.Tensor):
        """q, k (rotary applied), v, each [b, h, t, d] contiguous."""
        b, t, _ = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        cos, sin = rotary_tables(positions, self.head_dim, self.rope_base, qkv.dtype)
        return rotary(qkv[0], cos, sin), rotary(qkv[1], cos, sin), qkv[2].contiguous()

    def forward(self, x: torch.Tensor, valid: torch.Tensor,
                state: AttentionState | None = None, return_state: bool = False):
        b, t, d = x.shape
        if state is None:
            # right padding never matters to a causal model: positions are shared
            positions = torch.arange(t, device=x.device)
            q, k, v = self.project(x, positions)
            if self.window is None:
                out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            elif _cpu_bf16_training(q):
                # the CPU's masked bf16 SDPA backward is 1.3x slower than fp32's
                out = sliding_window_attention(q.float(), k.float(), v.float(), self.window)
                out = out.to(q.dtype)
            else:
                out = sliding_window_attention(q, k, v, self.window)
            keys, values, cached = k, v, 0
            start = x.new_zeros(b, dtype=torch.long)
            positions = positions[None].expand(b, t)
            key_pos, key_valid = positions, valid
        else:
            start = state.next_pos
            positions = start[:, None] + torch.arange(t, device=x.device)[None]
            q, k, v = self.project(x, positions)
            keys, values = torch.cat([state.k, k], dim=2), torch.cat([state.v, v], dim=2)
            key_pos = torch.cat([state.pos, positions], dim=1)
            key_valid = torch.cat([state.valid, valid], dim=1)
            cached = state.k.shape[2]
            out = masked_attention(q, positions, keys, values, key_pos, key_valid,
                                   self.window, cached)
        out = self.out_proj(out.transpose(1, 2).reshape(b, t, d))
        if not return_state:
            return out, None
        next_pos = start + valid.sum(1)
        reachable = key_valid
        if self.window is not None:
            reachable = reachable & (next_pos[:, None] - key_pos < self.window)
        kept = reachable.any(0).nonzero().squeeze(1)
        if len(kept) and int(kept[-1] - kept[0]) + 1 == len(kept):  # usually a suffix: a view
            kept = slice(int(kept[0]), int(kept[-1]) + 1)
        return out, AttentionState(
            keys[:, :, kept], values[:, :, kept], key_pos[:, kept], key_valid[:, kept], next_pos
        )


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(d_model, 2 * hidden, bias=False)
        self.out_proj = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.fc1(x).chunk(2, dim=-1)
        return self.out_proj(F.silu(gate) * up)
