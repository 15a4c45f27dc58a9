"""The chunked SSD scan against the sequential recurrence; dechunk EMA against a loop."""

import pytest
import torch

from dnahnet_core.model.chunking import chunk, dechunk, ema_reference, ema_scan
from dnahnet_core.model.ssd import ssd_reference, ssd_scan


def _inputs(length, b=2, h=3, p=4, n=5, g=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, length, h, p, generator=gen, dtype=torch.float64)
    dt = torch.nn.functional.softplus(torch.randn(b, length, h, generator=gen, dtype=torch.float64))
    A = -torch.rand(h, generator=gen, dtype=torch.float64) * 2 - 0.1
    B = torch.randn(b, length, g, n, generator=gen, dtype=torch.float64)
    C = torch.randn(b, length, g, n, generator=gen, dtype=torch.float64)
    return x, dt, A, B, C


@pytest.mark.parametrize("length", [1, 7, 16, 37, 100])
def test_chunked_scan_equals_sequential(length):
    x, dt, A, B, C = _inputs(length)
    y, final = ssd_scan(x, dt, A, B, C, chunk_size=16)
    y_ref, final_ref = ssd_reference(x, dt, A, B, C)
    torch.testing.assert_close(y, y_ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(final, final_ref, rtol=1e-9, atol=1e-9)


def test_chunked_scan_gradients_equal_sequential():
    inputs = [t.requires_grad_() for t in _inputs(45)]
    initial = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    y, final = ssd_scan(*inputs, chunk_size=8, initial_state=initial)
    (y.square().sum() + final.sum()).backward()
    grads = [t.grad.clone() for t in inputs + [initial]]
    for t in inputs + [initial]:
        t.grad = None
    y, final = ssd_reference(*inputs, initial_state=initial)
    (y.square().sum() + final.sum()).backward()
    for got, want in zip(grads, [t.grad for t in inputs + [initial]]):
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-8)


def test_strong_decays_equal_sequential_values_and_gradients():
    """Chunks whose decay spans far more than exp(-80) (clamped inside the chunk product)."""
    x, dt, A, B, C = _inputs(40, seed=1)
    dt = (dt * 30).requires_grad_()  # ~ -20 per step: exp(-300) across a chunk of 16
    x.requires_grad_()
    y, final = ssd_scan(x, dt, A, B, C, chunk_size=16)
    y_ref, final_ref = ssd_reference(x, dt, A, B, C)
    torch.testing.assert_close(y, y_ref, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(final, final_ref, rtol=1e-9, atol=1e-12)
    got = torch.autograd.grad(y.square().sum(), [x, dt])
    want = torch.autograd.grad(y_ref.square().sum(), [x, dt])
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-10)


def test_initial_state_continues_the_scan():
    x, dt, A, B, C = _inputs(50)
    y_full, final_full = ssd_scan(x, dt, A, B, C, chunk_size=16)
    y1, s1 = ssd_scan(x[:, :21], dt[:, :21], A, B[:, :21], C[:, :21], chunk_size=16)
    y2, s2 = ssd_scan(
        x[:, 21:], dt[:, 21:], A, B[:, 21:], C[:, 21:], chunk_size=16, initial_state=s1
    )
    torch.testing.assert_close(torch.cat([y1, y2], 1), y_full)
    torch.testing.assert_close(s2, final_full)


def test_zero_dt_leaves_state_unchanged():
    x, dt, A, B, C = _inputs(30)
    dt[:, 20:] = 0
    _, final = ssd_scan(x, dt, A, B, C, chunk_size=16)
    _, at_20 = ssd_reference(x[:, :20], dt[:, :20], A, B[:, :20], C[:, :20])
    torch.testing.assert_close(final, at_20)


def _naive_ema(values, p, initial):
    valid = torch.ones(p.shape, dtype=torch.bool)
    return ema_reference(values, p, valid, initial)[0]


@pytest.mark.parametrize("d", [8, 128])
def test_dechunk_ema_equals_loop(d):
    gen = torch.Generator().manual_seed(1)
    values = torch.randn(2, 75, d, generator=gen)
    p = torch.rand(2, 75, generator=gen)
    initial = torch.randn(2, d, generator=gen)
    valid = torch.ones(2, 75, dtype=torch.bool)
    e, last = ema_scan(values, p, valid, initial)
    want = _naive_ema(values, p, initial)
    torch.testing.assert_close(e, want, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(last, want[:, -1], rtol=1e-4, atol=1e-4)


def test_ema_skips_invalid_steps():
    values, p = torch.randn(1, 10, 4), torch.rand(1, 10)
    valid = torch.tensor([[True] * 6 + [False] * 4])
    e, last = ema_scan(values, p, valid, None)
    want = _naive_ema(values[:, :6], p[:, :6], torch.zeros(1, 4))
    torch.testing.assert_close(last, want[:, -1], rtol=1e-5, atol=1e-5)
    # the reference skips them the same way, with padding interleaved per element
    valid2 = torch.tensor([[True, False] * 5])
    e2, last2 = ema_scan(values, p, valid2, None)
    e_ref, last_ref = ema_reference(values, p, valid2, None)
    torch.testing.assert_close(last2, last_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(e2[valid2], e_ref[valid2], rtol=1e-5, atol=1e-5)


def test_chunk_then_dechunk_places_each_chunk_on_its_positions():
    boundary = torch.tensor([[1, 0, 0, 1, 1, 0, 1, 0], [1, 1, 0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    h = torch.arange(16, dtype=torch.float32).view(2, 8, 1).expand(2, 8, 3).contiguous()
    chunks, chunk_valid, order = chunk(h, boundary)
    assert chunk_valid.tolist() == [[True] * 4, [True, True, True, False]]
    assert order[0].tolist() == [0, 3, 4, 6] and order[1, :3].tolist() == [0, 1, 7]
    # P ~ 1 makes the EMA the identity: each position gets its own chunk's value
    p_one = torch.ones(2, chunks.shape[1])
    out, _ = dechunk(chunks, p_one, chunk_valid, boundary)
    assert out[0, :, 0].tolist() == pytest.approx([0, 0, 0, 3, 4, 4, 6, 6], abs=1e-2)
    assert out[1, :, 0].tolist() == pytest.approx([8, 9, 9, 9, 9, 9, 9, 15], abs=1e-2)


def test_bf16_inputs_run_the_chunk_products_in_bf16_close_to_fp32():
    x, dt, A, B, C = (t.float() for t in _inputs(300, h=4, p=8, n=8, seed=3))
    dt = dt * 0.1
    y32, final32 = ssd_scan(x, dt, A, B, C, chunk_size=32)
    y16, final16 = ssd_scan(x.bfloat16(), dt, A, B.bfloat16(), C.bfloat16(), chunk_size=32)
    assert y16.dtype == torch.bfloat16 and final16.dtype == torch.float32
    relative = (y16.float() - y32).norm() / y32.norm()
    assert relative < 2e-2, relative
    assert ((final16 - final32).norm() / final32.norm()) < 2e-2


def test_shifted_conv_equals_conv1d_reference():
    from dnahnet_core.model.ssm import causal_depthwise_conv, causal_depthwise_conv_reference

    gen = torch.Generator().manual_seed(0)
    full = torch.randn(2, 3 + 50, 6, generator=gen)
    weight, bias = torch.randn(6, 1, 4, generator=gen), torch.randn(6, generator=gen)
    torch.testing.assert_close(
        causal_depthwise_conv(full, weight, bias),
        causal_depthwise_conv_reference(full, weight, bias),
        rtol=1e-5, atol=1e-5,
    )


def test_bf16_conv_accumulates_in_fp32_on_cpu():
    """bf16 inputs are rounded once, at the output: within half a bf16 ulp of the exact conv.

    Accumulating the four taps in bf16 (what addcmul on bf16 tensors does) rounds at every
    tap and misses this bound."""
    from dnahnet_core.model.ssm import causal_depthwise_conv, causal_depthwise_conv_reference

    gen = torch.Generator().manual_seed(0)
    full = torch.randn(2, 3 + 512, 64, generator=gen).bfloat16()
    weight, bias = torch.randn(64, 1, 4, generator=gen), torch.randn(64, generator=gen)
    out = causal_depthwise_conv(full, weight, bias)
    assert out.dtype == torch.bfloat16
    exact = causal_depthwise_conv_reference(full.double(), weight.double(), bias.double())
    error = (out.double() - exact).abs()
    assert (error <= exact.abs() * 2.0**-8 + 1e-5).all(), error.max()


@pytest.mark.parametrize("batch, grid_rows", [(2, 5), (3, 2), (2, 1)])
def test_fast_scan_past_cudas_grid_limit_runs_in_pieces_with_the_same_result(
    batch, grid_rows, monkeypatch
):
    """mamba-ssm's kernels put batch x chunks in a CUDA grid dimension capped at 65,535:
    4,194,304 nt failed on an H100 (2026-11-23). fast_path.chunk_scan splits such a scan;
    here the kernel is the pure scan behind a fake that refuses what CUDA refuses, with the
    cap lowered: values, final state and gradients must equal one whole scan."""
    from dnahnet_core.model import fast_path
    from dnahnet_core.model.ssd import ssd_chunked

    calls = []

    def kernel(x, dt, A, B, C, *, chunk_size, initial_states, return_final_states):
        chunks = -(-x.shape[1] // chunk_size)
        assert x.shape[0] * chunks <= grid_rows, "invalid argument (the grid)"
        calls.append(x.shape[1])
        return ssd_chunked(x, dt, A, B, C, chunk_size, initial_states)

    monkeypatch.setattr(fast_path, "GRID_ROWS", grid_rows)
    monkeypatch.setattr(fast_path, "_combined", lambda: kernel)
    inputs = [t.requires_grad_() for t in _inputs(45, b=batch)]
    initial = torch.randn(batch, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    pieces = fast_path.chunk_scan(*inputs, 8, initial)
    assert len(calls) > 1 and sum(calls) == 45 * -(-batch // grid_rows)
    whole = ssd_chunked(*inputs, 8, initial)
    for got, want in zip(pieces, whole, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    grads = torch.autograd.grad(sum(t.square().sum() for t in pieces), [*inputs, initial])
    wants = torch.autograd.grad(sum(t.square().sum() for t in whole), [*inputs, initial])
    for got, want in zip(grads, wants, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
