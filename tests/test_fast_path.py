"""mamba-ssm (Triton) fast path against the pure PyTorch path: same weights, same numbers.

Runs only where CUDA and mamba_ssm import; CPU machines skip it (the pure path never
depends on mamba_ssm — that part is checked everywhere).
"""

import importlib
import os

import pytest
import torch

from dnahnet_core.model import build_model, fast_path, load_config
from dnahnet_core.model.ssd import ssd_scan

needs_gpu = pytest.mark.skipif(not fast_path.available(), reason="needs CUDA and mamba_ssm")


def test_pure_path_never_needs_mamba_ssm():
    assert not fast_path.enabled_for(torch.zeros(1))  # CPU tensors always take the pure path
    source = importlib.util.find_spec("dnahnet_core.model.ssd").origin
    assert "import mamba_ssm" not in open(source).read()


def _pure(fn):
    os.environ["DNAHNET_PURE_TORCH"] = "1"
    fast_path.available.cache_clear()
    try:
        return fn()
    finally:
        os.environ.pop("DNAHNET_PURE_TORCH")
        fast_path.available.cache_clear()


@needs_gpu
def test_ssd_scan_agrees_with_pure_path_on_gpu():
    gen = torch.Generator(device="cuda").manual_seed(0)
    b, length, h, p, n = 2, 1000, 8, 64, 64
    x = torch.randn(b, length, h, p, device="cuda", generator=gen)
    dt = torch.nn.functional.softplus(torch.randn(b, length, h, device="cuda", generator=gen))
    A = -torch.rand(h, device="cuda", generator=gen)
    B = torch.randn(b, length, 1, n, device="cuda", generator=gen)
    C = torch.randn(b, length, 1, n, device="cuda", generator=gen)
    init = torch.randn(b, h, p, n, device="cuda", generator=gen)
    y_fast, s_fast = ssd_scan(x, dt, A, B, C, 128, init)
    y_pure, s_pure = _pure(lambda: ssd_scan(x, dt, A, B, C, 128, init))
    torch.testing.assert_close(y_fast, y_pure, rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(s_fast, s_pure, rtol=2e-3, atol=2e-3)


@needs_gpu
def test_whole_model_agrees_with_pure_path_on_gpu():
    model = build_model(load_config("dnahnet-small"), seed=0).cuda().eval()
    tokens = torch.randint(0, 4, (2, 4096), device="cuda")
    with torch.no_grad():
        fast = model.log_probs(tokens)
        pure = _pure(lambda: model.log_probs(tokens))
    torch.testing.assert_close(fast, pure, rtol=1e-3, atol=1e-3)
