"""The state-space-duality (SSD) scan of Mamba2, chunked, in pure PyTorch.

    h_t = exp(dt_t * A) h_{t-1} + dt_t * B_t x_t^T,     y_t = C_t . h_t

Inside a chunk of Q steps the scan is a masked (Q x Q) matrix product; across chunks
a short recurrence over chunk states carries h. Positions with dt = 0 leave the state
untouched, which is how padding is skipped. `ssd_reference` is the plain sequential
recurrence, kept for tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dnahnet_core.model import fast_path


def ssd_scan(
    x: torch.Tensor,  # [b, l, h, p]
    dt: torch.Tensor,  # [b, l, h], >= 0 (softplus already applied)
    A: torch.Tensor,  # [h], negative
    B: torch.Tensor,  # [b, l, g, n]
    C: torch.Tensor,  # [b, l, g, n]
    chunk_size: int = 64,
    initial_state: torch.Tensor | None = None,  # [b, h, p, n]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return y [b, l, h, p] (no D skip term) and the final state [b, h, p, n].

    The kernel is chosen here: mamba-ssm's on CUDA when it imports, else `ssd_chunked`.
    """
    if fast_path.enabled_for(x):
        return fast_path.chunk_scan(x, dt, A, B, C, chunk_size, initial_state)
    return ssd_chunked(x, dt, A, B, C, chunk_size, initial_state)


def ssd_chunked(x, dt, A, B, C, chunk_size: int = 64, initial_state=None):
    """The chunked SSD scan in pure PyTorch (same contract as `ssd_scan`)."""
    dtype = x.dtype
    compute = torch.promote_types(dtype, torch.float32)  # at least fp32, fp64 stays fp64
    # the products inside chunks run in the inputs' precision when that is bf16/fp16
    # (autocast); decays, cumulative sums and the state carried across chunks stay fp32
    low = dtype if dtype in (torch.bfloat16, torch.float16) else compute
    x, dt, A = (t.to(compute) for t in (x, dt, A))
    B, C = B.to(low), C.to(low)
    b, length, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    q = min(chunk_size, max(length, 1))
    pad = (-length) % q
    if pad:
        x, dt, B, C = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (x, dt, B, C))
    c = x.shape[1] // q
    # head-major layout [b, h, c, q, .]; B and C stay per group and broadcast over heads
    x_dt = (x * dt.unsqueeze(-1)).view(b, c, q, h, p).permute(0, 3, 1, 2, 4)
    B = _per_head(B.view(b, c, q, g, n).permute(0, 3, 1, 2, 4), h)  # [b, g|h, c, q, n]
    C = _per_head(C.view(b, c, q, g, n).permute(0, 3, 1, 2, 4), h)
    a_cum = torch.cumsum((dt * A).view(b, c, q, h).permute(0, 3, 1, 2), dim=-1)  # [b, h, c, q]

    # within chunks: y_i = sum_{j<=i} (C_i . B_j) exp(a_i - a_j) dt_j x_j
    causal = torch.ones(q, q, dtype=torch.bool, device=x.device).tril()
    segment = a_cum.unsqueeze(-1) - a_cum.unsqueeze(-2)
    # exp runs 2-6x slower on -inf or underflowing inputs: clamp to exp(-80) ~ 1e-35, a
    # weight no fp32 sum can see beside the diagonal's 1; the upper triangle is zeroed after
    decay = segment.clamp_(-80.0, 0.0).exp_()
    x_dt_low = x_dt.to(low)
    scores = ((C @ B.transpose(-1, -2)) * decay.to(low)).masked_fill_(~causal, 0.0)
    y = scores @ x_dt_low  # [b, h, c, q, p]

    # state contributed by each chunk, then carried across chunks
    decay_to_end = torch.exp(a_cum[..., -1:] - a_cum).unsqueeze(-1)  # [b, h, c, q, 1]
    chunk_states = ((x_dt * decay_to_end).to(low).transpose(-1, -2) @ B).to(compute)
    chunk_decay = torch.exp(a_cum[..., -1])  # [b, h, c]
    state = x.new_zeros(b, h, p, n) if initial_state is None else initial_state.to(compute)
    entering, state = _pass_states(chunk_decay, chunk_states, state)
    entering = entering.to(low)  # [b, h, c, p, n]
    carried = (C @ entering.transpose(-1, -2)).to(compute) * torch.exp(a_cum).unsqueeze(-1)
    y = y.to(compute) + carried
    y = y.permute(0, 2, 3, 1, 4).reshape(b, c * q, h, p)[:, :length]
    return y.to(dtype), state


@torch.compiler.disable
def _pass_states(chunk_decay, chunk_states, state):
    """The recurrence across chunks: the state entering each chunk, and the final state.

    A short Python loop (one step per chunk), kept out of compiled graphs so that their
    size does not grow with the sequence length.
    """
    entering = []
    # unbind once: indexing inside the loop would make backward zero-fill the whole
    # tensor at every step
    for decay, contribution in zip(chunk_decay.unbind(2), chunk_states.unbind(2)):
        entering.append(state)
        state = decay[..., None, None] * state + contribution
    return torch.stack(entering, dim=2), state


def _per_head(t: torch.Tensor, heads: int) -> torch.Tensor:
    """[b, g, ...] -> broadcastable against [b, heads, ...] (groups of consecutive heads)."""
    groups = t.shape[1]
    return t if groups in (1, heads) else t.repeat_interleave(heads // groups, dim=1)


def ssd_reference(x, dt, A, B, C, initial_state=None):
    """The same recurrence one time step at a time (slow; for tests only)."""
    b, length, h, p = x.shape
    n = B.shape[-1]
    B = B.repeat_interleave(h // B.shape[2], dim=2)
    C = C.repeat_interleave(h // C.shape[2], dim=2)
    state = x.new_zeros(b, h, p, n) if initial_state is None else initial_state
    ys = []
    for t in range(length):
        decay = torch.exp(dt[:, t] * A)  # [b, h]
        state = decay[..., None, None] * state + torch.einsum(
            "bh,bhp,bhn->bhpn", dt[:, t], x[:, t], B[:, t]
        )
        ys.append(torch.einsum("bhpn,bhn->bhp", state, C[:, t]))
    return torch.stack(ys, dim=1), state
