"""Mamba2's causal depthwise conv and its SiLU in one Triton kernel each way (the fast path).

The pure path (`ssm.causal_depthwise_conv`, then `F.silu`) is k shifted multiply-adds
plus a concatenated history and an activation: on a GPU about seven launches, each
reading or writing the whole [b, t, conv_dim] activation (the largest memory traffic
of a dnaHNet forward). Here the forward reads the input once and writes the activation
once, and the backward recomputes the conv rather than keeping it. mamba-ssm leaves this
conv to the `causal-conv1d` package, a CUDA extension that cannot be built without a
GPU toolchain; Triton compiles on the GPU machine itself.

`lead` zero rows stand before the input: k - 1 for a fresh sequence (the history is
zeros and is never materialised), 0 when the caller passes [history; input]. The weight
and bias stay in float32 and the sum is taken in float32 whatever the input's dtype;
the output has the input's dtype. The weight's and bias's gradients are summed per
block of positions and then over blocks by torch (no atomics: the same bits every run).

Imported only by `fast_path` (it needs triton).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK_T = 32
BLOCK_C = 128


@triton.jit
def _value(x_ptr, rows, channels, row_mask, channel_mask, stride_t, LEAD: tl.constexpr):
    """x at full-sequence rows `rows` (the first LEAD of them zeros), as float32."""
    index = rows - LEAD
    mask = (row_mask & (index >= 0))[:, None] & channel_mask[None, :]
    values = tl.load(x_ptr + index[:, None].to(tl.int64) * stride_t + channels[None, :],
                     mask=mask, other=0.0)
    return values.to(tl.float32)


@triton.jit
def _pre_activation(x_ptr, w_ptr, bias, positions, channels, channel_mask, length, stride_t,
                    K: tl.constexpr, LEAD: tl.constexpr, BLOCK_T: tl.constexpr,
                    BLOCK_C: tl.constexpr):
    """The conv at output `positions`: bias + sum_i w[c, i] * full[position + i]."""
    acc = tl.zeros((BLOCK_T, BLOCK_C), dtype=tl.float32) + bias[None, :]
    inside = (positions >= 0) & (positions < length)
    for i in tl.static_range(K):
        tap = tl.load(w_ptr + channels * K + i, mask=channel_mask, other=0.0)
        values = _value(x_ptr, positions + i, channels, inside, channel_mask, stride_t, LEAD)
        acc += values * tap[None, :]
    return acc


@triton.jit
def _tile(b_ptr, channels_total, BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr):
    """This program's positions and channels, the channels' mask and their bias."""
    positions = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    channels = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    channel_mask = channels < channels_total
    bias = tl.load(b_ptr + channels, mask=channel_mask, other=0.0)
    return positions, channels, channel_mask, bias


@triton.jit
def _grad_pre(grad_ptr, x_ptr, w_ptr, bias, positions, channels, channel_mask, length,
              stride_gt, stride_xt, K: tl.constexpr, LEAD: tl.constexpr, SILU: tl.constexpr,
              BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr):
    """The gradient at the conv's output (before the SiLU) at `positions`; zero outside."""
    inside = (positions >= 0) & (positions < length)
    grad = tl.load(grad_ptr + positions[:, None].to(tl.int64) * stride_gt + channels[None, :],
                   mask=inside[:, None] & channel_mask[None, :], other=0.0).to(tl.float32)
    if SILU:  # the conv recomputed: d silu(a) / da = s (1 + a (1 - s)), s = sigmoid(a)
        pre = _pre_activation(x_ptr, w_ptr, bias, positions, channels, channel_mask, length,
                              stride_xt, K, LEAD, BLOCK_T, BLOCK_C)
        gate = tl.sigmoid(pre)
        grad = grad * gate * (1.0 + pre * (1.0 - gate))
    return grad


@triton.jit
def _conv_silu_forward(x_ptr, w_ptr, b_ptr, out_ptr, length, channels_total,
                       stride_xb, stride_xt, stride_ob, stride_ot,
                       K: tl.constexpr, LEAD: tl.constexpr, SILU: tl.constexpr,
                       BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr):
    positions, channels, channel_mask, bias = _tile(b_ptr, channels_total, BLOCK_T, BLOCK_C)
    row = tl.program_id(2).to(tl.int64)
    out = _pre_activation(x_ptr + row * stride_xb, w_ptr, bias, positions, channels,
                          channel_mask, length, stride_xt, K, LEAD, BLOCK_T, BLOCK_C)
    if SILU:
        out = out * tl.sigmoid(out)
    mask = (positions < length)[:, None] & channel_mask[None, :]
    tl.store(out_ptr + row * stride_ob + positions[:, None].to(tl.int64) * stride_ot
             + channels[None, :], out.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _conv_silu_backward(x_ptr, w_ptr, b_ptr, grad_ptr, grad_x_ptr, grad_w_ptr, grad_b_ptr,
                        length, input_length, channels_total,
                        stride_xb, stride_xt, stride_gb, stride_gt, stride_dxb, stride_dxt,
                        K: tl.constexpr, LEAD: tl.constexpr, SILU: tl.constexpr,
                        BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr):
    """One block of input rows: their gradient; and, over the same block of output
    positions, the weight's and bias's partial sums (into [b, blocks, C, K], [b, blocks, C])."""
    starts, channels, channel_mask, bias = _tile(b_ptr, channels_total, BLOCK_T, BLOCK_C)
    row = tl.program_id(2).to(tl.int64)
    x_ptr += row * stride_xb
    grad_ptr += row * stride_gb
    grad_x = tl.zeros((BLOCK_T, BLOCK_C), dtype=tl.float32)
    # input row u is full row u + LEAD; output position p reads it through tap u + LEAD - p
    for j in tl.static_range(K):
        grad_pre = _grad_pre(grad_ptr, x_ptr, w_ptr, bias, starts + LEAD - (K - 1) + j,
                             channels, channel_mask, length, stride_gt, stride_xt, K, LEAD,
                             SILU, BLOCK_T, BLOCK_C)
        tap = tl.load(w_ptr + channels * K + (K - 1 - j), mask=channel_mask, other=0.0)
        grad_x += grad_pre * tap[None, :]
    tl.store(grad_x_ptr + row * stride_dxb + starts[:, None].to(tl.int64) * stride_dxt
             + channels[None, :], grad_x.to(grad_x_ptr.dtype.element_ty),
             mask=(starts < input_length)[:, None] & channel_mask[None, :])
    grad_pre = _grad_pre(grad_ptr, x_ptr, w_ptr, bias, starts, channels, channel_mask, length,
                         stride_gt, stride_xt, K, LEAD, SILU, BLOCK_T, BLOCK_C)
    partial = (row * tl.num_programs(0) + tl.program_id(0)) * channels_total
    tl.store(grad_b_ptr + partial + channels, tl.sum(grad_pre, axis=0), mask=channel_mask)
    for i in tl.static_range(K):
        values = _value(x_ptr, starts + i, channels, starts < length, channel_mask, stride_xt,
                        LEAD)
        tl.store(grad_w_ptr + (partial + channels) * K + i,
                 tl.sum(grad_pre * values, axis=0), mask=channel_mask)


def _rows_contiguous(x: torch.Tensor) -> torch.Tensor:
    """[b, t, c] with unit channel stride (a split of a projection's output already is)."""
    return x if x.stride(-1) == 1 else x.contiguous()


def _grid(rows: int, channels: int, batch: int):
    return (triton.cdiv(rows, BLOCK_T), triton.cdiv(channels, BLOCK_C), batch)


class CausalConvSilu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, lead: int, silu: bool):
        x = _rows_contiguous(x)
        batch, input_length, channels = x.shape
        k = weight.shape[-1]
        length = input_length + lead - (k - 1)
        taps = weight.reshape(channels, k).float().contiguous()
        bias32 = bias.float().contiguous()
        out = x.new_empty(batch, length, channels)
        if out.numel():
            _conv_silu_forward[_grid(length, channels, batch)](
                x, taps, bias32, out, length, channels, x.stride(0), x.stride(1),
                out.stride(0), out.stride(1), K=k, LEAD=lead, SILU=silu,
                BLOCK_T=BLOCK_T, BLOCK_C=BLOCK_C)
        ctx.save_for_backward(x, taps, bias32)
        ctx.lead, ctx.silu, ctx.weight_dtype, ctx.bias_dtype = lead, silu, weight.dtype, bias.dtype
        ctx.weight_shape = weight.shape
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, taps, bias32 = ctx.saved_tensors
        grad_out = _rows_contiguous(grad_out)
        batch, input_length, channels = x.shape
        k = taps.shape[-1]
        length = grad_out.shape[1]
        grid = _grid(max(input_length, length), channels, batch)
        grad_x = torch.empty_like(x)
        grad_w = x.new_zeros(batch, grid[0], channels, k, dtype=torch.float32)
        grad_b = x.new_zeros(batch, grid[0], channels, dtype=torch.float32)
        if x.numel():
            _conv_silu_backward[grid](
                x, taps, bias32, grad_out, grad_x, grad_w, grad_b, length, input_length,
                channels, x.stride(0), x.stride(1), grad_out.stride(0), grad_out.stride(1),
                grad_x.stride(0), grad_x.stride(1), K=k, LEAD=ctx.lead, SILU=ctx.silu,
                BLOCK_T=BLOCK_T, BLOCK_C=BLOCK_C)
        grad_w = grad_w.sum((0, 1)).reshape(ctx.weight_shape).to(ctx.weight_dtype)
        return grad_x, grad_w, grad_b.sum((0, 1)).to(ctx.bias_dtype), None, None


def causal_conv_silu(x, weight, bias, lead: int, silu: bool = True):
    """silu(causal depthwise conv) of x [b, t_in, c] with `lead` zero rows before it ->
    [b, t_in + lead - (k - 1), c]; weight [c, 1, k] (nn.Conv1d's), bias [c]."""
    return CausalConvSilu.apply(x, weight, bias, lead, silu)
