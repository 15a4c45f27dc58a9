"""mamba-ssm (Triton) fast path against the pure PyTorch path: same weights, same numbers.

Runs only where CUDA and mamba_ssm import; CPU machines skip it (the pure path never
depends on mamba_ssm — that part is checked everywhere).
"""

import importlib
import os
import subprocess
import sys

import pytest
import torch

from dnahnet_core.model import build_model, fast_path, load_config, load_model
from dnahnet_core.model.ssd import ssd_scan
from tests import triton_interpreter

needs_gpu = pytest.mark.skipif(not fast_path.available(), reason="needs CUDA and mamba_ssm")
needs_triton = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None or importlib.util.find_spec("mamba_ssm") is None,
    reason="needs triton and mamba_ssm (installed as scripts/gpu_check.sh installs it)")


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


# ---- issue 16 §2: the two back ends on one GPU, fp32 and bf16, same weights ----------------
# Each check below is written as a function of the device so that its arithmetic can be run
# on a CPU too (where both sides take the pure path); the tests run it on CUDA.


def _model(name: str, device: str):
    """A preset with untrained weights, or "default": the shipped model (trained routers
    make crisp boundary decisions, untrained ones sit near the threshold)."""
    model = load_model(None) if name == "default" else build_model(load_config(name), seed=0)
    return model.to(device)


def _run(model, tokens, precision: str, pure: bool, grad: bool = False):
    """Log-probs, per-stage boundary probabilities and decisions, and (grad) the gradients
    of the training loss, on one back end."""
    def go():
        model.zero_grad(set_to_none=True)
        with torch.autocast(tokens.device.type, torch.bfloat16, enabled=precision == "bf16"):
            with torch.set_grad_enabled(grad):
                out = model(tokens)
        logp = torch.log_softmax(out.logits.float(), -1)
        nll = -logp.gather(-1, tokens[..., None]).mean()
        grads = None
        if grad:
            (nll + 0.02 * out.ratio_loss).backward()
            grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()
                     if p.grad is not None}
        return {"logp": logp.detach(), "probs": [s.boundary_prob.detach().float()
                                                  for s in out.stages],
                "masks": [s.boundary_mask for s in out.stages], "grads": grads}
    return _pure(go) if pure else go()


def _decisions_that_differ(a: dict, b: dict) -> float:
    differ = sum(int((ma != mb).sum()) for ma, mb in zip(a["masks"], b["masks"], strict=True))
    return differ / sum(m.numel() for m in a["masks"])


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def _report(what: str, **measured: float) -> None:
    """One line of measured differences, before the asserts judge them (gpu_check.sh runs
    pytest with -s, so the numbers are in its report whether the test passes or not)."""
    print(f"\nagreement {what}: " + ", ".join(f"{k} {v:.2e}" for k, v in measured.items()),
          flush=True)


def _grad_error(grads: dict, reference: dict) -> float:
    """The largest relative error over parameters, ||g - g_ref|| / ||g_ref||."""
    return max(float((grads[n] - g).norm() / g.norm().clamp(min=1e-12)) for n, g in
               reference.items() if g.norm() > 1e-8)


def _tokens(batch: int, length: int, seed: int, device: str) -> torch.Tensor:
    return torch.randint(0, 4, (batch, length), generator=torch.Generator().manual_seed(seed))\
        .to(device)


def check_fp32_agreement(device: str, preset: str = "dnahnet-small", length: int = 4096,
                         batch: int = 2) -> None:
    model = _model(preset, device).train()
    tokens = _tokens(batch, length, 1, device)
    fast = _run(model, tokens, "fp32", pure=False, grad=True)
    pure = _run(model, tokens, "fp32", pure=True, grad=True)
    _report(f"fp32 {preset} {batch}x{length}", logp=_max_diff(fast["logp"], pure["logp"]),
            probs=max(_max_diff(a, b) for a, b in zip(fast["probs"], pure["probs"])),
            decisions_differ=_decisions_that_differ(fast, pure),
            grad_rel_error=_grad_error(fast["grads"], pure["grads"]))
    torch.testing.assert_close(fast["logp"], pure["logp"], rtol=1e-3, atol=1e-3)
    for pf, pp, mf, mp in zip(fast["probs"], pure["probs"], fast["masks"], pure["masks"],
                              strict=True):
        torch.testing.assert_close(pf, pp, rtol=1e-3, atol=1e-3)
        # a decision may differ only where its probability sits at the 0.5 threshold
        assert ((mf != mp) <= ((pp - 0.5).abs() < 1e-3)).all()
    assert _grad_error(fast["grads"], pure["grads"]) < 1e-2


def check_bf16_agreement(device: str, preset: str = "dnahnet-small", length: int = 4096,
                         batch: int = 2) -> None:
    """In bf16 the two back ends round differently: each is measured against the fp32
    result, and the fast path may be at most twice as far from it as the pure path."""
    model = _model(preset, device).train()
    tokens = _tokens(batch, length, 1, device)
    exact = _run(model, tokens, "fp32", pure=True, grad=True)
    fast = _run(model, tokens, "bf16", pure=False, grad=True)
    pure = _run(model, tokens, "bf16", pure=True, grad=True)

    errors = {name: {"logp_mean": float((r["logp"] - exact["logp"]).abs().mean()),
                     "decisions_differ": _decisions_that_differ(r, exact),
                     "grad_rel_error": _grad_error(r["grads"], exact["grads"])}
              for name, r in (("fast", fast), ("pure", pure))}
    for name, measured in errors.items():
        _report(f"bf16 {preset} {batch}x{length}, {name} vs exact fp32", **measured)
    fast_error, pure_error = errors["fast"], errors["pure"]
    assert fast_error["logp_mean"] <= 2 * pure_error["logp_mean"] + 1e-4
    assert fast_error["decisions_differ"] <= 2 * pure_error["decisions_differ"] + 1e-3
    assert fast_error["grad_rel_error"] <= 2 * pure_error["grad_rel_error"] + 1e-3


def check_incremental_agreement(device: str, preset: str = "dnahnet-small",
                                length: int = 3000, batch: int = 2) -> None:
    """Prefix with state, then a block, then 10 single steps: the full forward's log-probs
    and boundaries, with the fast path's scan states feeding the continuation."""
    model = _model(preset, device).eval()
    tokens = _tokens(batch, length, 2, device)
    prefix, stepped = 2 * length // 3, length - 10
    with torch.no_grad():
        full = model(tokens)
        first = model(tokens[:, :prefix], return_state=True)
        second = model(tokens[:, prefix:stepped], state=first.state, return_state=True)
        state, steps = second.state, []
        for t in range(stepped, length):
            steps.append(state.next_logits)
            state = model(tokens[:, t : t + 1], state=state, return_state=True).state
    joined = torch.cat([first.logits, second.logits, torch.stack(steps, 1)], 1)
    _report(f"incremental {preset} {batch}x{length}", logits=_max_diff(joined, full.logits))
    torch.testing.assert_close(joined, full.logits, rtol=1e-3, atol=1e-3)
    for s_full, s_a, s_b in zip(full.stages, first.stages, second.stages, strict=True):
        joined_mask = torch.cat([s_a.boundary_mask, s_b.boundary_mask], 1)
        near = (s_full.boundary_prob[:, :stepped] - 0.5).abs() < 1e-3
        assert ((joined_mask != s_full.boundary_mask[:, :stepped]) <= near).all()


@needs_gpu
@pytest.mark.parametrize("preset", ["dnahnet-small", "dnahnet-2stage-r32", "default"])
def test_fp32_log_probs_boundaries_and_gradients_agree_on_gpu(preset):
    check_fp32_agreement("cuda", preset)


@needs_gpu
@pytest.mark.parametrize("preset", ["dnahnet-small", "default"])
def test_bf16_fast_path_is_as_close_to_fp32_as_the_pure_path_on_gpu(preset):
    check_bf16_agreement("cuda", preset)


@needs_gpu
@pytest.mark.parametrize("preset", ["dnahnet-small", "default"])
def test_incremental_continuation_equals_full_forward_on_gpu(preset):
    check_incremental_agreement("cuda", preset)


@pytest.mark.slow
@needs_triton
@pytest.mark.parametrize("check", triton_interpreter.CHECKS)
def test_fast_path_agrees_in_tritons_interpreter_on_cpu(check):
    """The same checks with mamba-ssm's kernels run by Triton's CPU interpreter: whether
    dnahnet calls them right, before any GPU."""
    done = subprocess.run(
        [sys.executable, triton_interpreter.__file__, *map(str, check)], capture_output=True,
        text=True, timeout=1200, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the fast path agrees with the pure path" in done.stdout
