"""Causal multi-head attention with RoPE, and the SwiGLU MLP.

With a `window` W, a query at position i sees keys at positions (i - W, i]; it is
computed blockwise (query blocks of W against at most 2W keys), so cost and memory
are O(L * W), never an L x L matrix. Without a window (the innermost, most compressed
level) attention is global.

Incremental state: the keys/values still reachable (rotary already applied), their
positions and validity, and each element's next position. Positions are per batch
element because inner levels see a different number of chunks per element.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rotary(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Rotate pairs (first half, second half) of x [b, t, h, d] by position [b, t]."""
    half = x.shape[-1] // 2
    freqs = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = positions.float()[..., None, None] * freqs  # [b, t, 1, half]
    cos, sin = torch.cos(angles), torch.sin(angles)
    x1, x2 = x.float()[..., :half], x.float()[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, window: int | None, rope_base: float):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} not divisible by num_heads={num_heads}")
        self.num_heads, self.head_dim = num_heads, d_model // num_heads
        self.window, self.rope_base = window, rope_base
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, state: dict | None = None):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, self.head_dim).unbind(2)
        start = x.new_zeros(b, dtype=torch.long) if state is None else state["next_pos"]
        positions = start[:, None] + torch.arange(t, device=x.device)[None]
        q = rotary(q, positions, self.rope_base)
        k = rotary(k, positions, self.rope_base)
        if state is None:
            keys, values, key_pos, key_valid = k, v, positions, valid
        else:
            keys = torch.cat([state["k"], k], dim=1)
            values = torch.cat([state["v"], v], dim=1)
            key_pos = torch.cat([state["pos"], positions], dim=1)
            key_valid = torch.cat([state["valid"], valid], dim=1)
        cached = keys.shape[1] - t
        if state is None and self.window is None:
            # right padding never matters to a causal model: plain causal SDPA
            out = F.scaled_dot_product_attention(
                q.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2), is_causal=True
            ).transpose(1, 2)
        else:
            out = self._attend_blocks(q, positions, keys, values, key_pos, key_valid, cached)
        next_pos = start + valid.sum(1)
        reachable = key_valid
        if self.window is not None:
            reachable = reachable & (next_pos[:, None] - key_pos < self.window)
        keep = reachable.any(0)
        new_state = {
            "k": keys[:, keep],
            "v": values[:, keep],
            "pos": key_pos[:, keep],
            "valid": key_valid[:, keep],
            "next_pos": next_pos,
        }
        return self.out_proj(out.reshape(b, t, d)), new_state

    def _attend_blocks(self, q, q_pos, keys, values, key_pos, key_valid, cached):
        """Masked attention, one block of queries at a time (keys limited to the window)."""
        t = q.shape[1]
        block = self.window or t
        outputs = []
        for start in range(0, t, block):
            stop = min(start + block, t)
            if self.window is None:
                index = torch.arange(cached + stop, device=q.device)
            else:
                # cached keys are few (trimmed to the window) and may be interleaved with
                # padding, so they are always included; new keys only from the window
                first = cached + max(0, start - block + 1)
                index = torch.cat(
                    [
                        torch.arange(cached, device=q.device),
                        torch.arange(first, cached + stop, device=q.device),
                    ]
                )
            k_pos, k_valid = key_pos[:, index], key_valid[:, index]
            qp = q_pos[:, start:stop, None]
            allowed = k_valid[:, None, :] & (k_pos[:, None, :] <= qp)
            if self.window is not None:
                allowed &= qp - k_pos[:, None, :] < self.window
            # a padded query attends to itself, so no row is empty (no NaN)
            own = cached + torch.arange(start, stop, device=q.device)
            allowed |= index[None, None, :] == own[None, :, None]
            out = F.scaled_dot_product_attention(
                q[:, start:stop].transpose(1, 2),
                keys[:, index].transpose(1, 2),
                values[:, index].transpose(1, 2),
                attn_mask=allowed[:, None],
            )
            outputs.append(out.transpose(1, 2))
        return torch.cat(outputs, dim=1)


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(d_model, 2 * hidden, bias=False)
        self.out_proj = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.fc1(x).chunk(2, dim=-1)
        return self.out_proj(F.silu(gate) * up)
