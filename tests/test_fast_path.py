"""mamba-ssm (Triton) fast path against the pure PyTorch path: same weights, same numbers.

Runs only where CUDA and mamba_ssm import; CPU machines skip it (the pure path never
depends on mamba_ssm — that part is checked everywhere).
"""

import contextlib
import importlib
import os
import subprocess
import sys

import pytest
import torch

from dnahnet_core.alphabet import encode
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


def test_a_cpu_forward_and_backward_never_load_the_triton_kernels():
    """Our Mamba2 conv kernel needs triton, and mamba_ssm its own: a CPU model (state
    included) loads neither, even where triton is installed (torch itself may import
    triton there)."""
    code = (
        "import sys, torch\n"
        "from dnahnet_core.model import build_model, load_config\n"
        "model = build_model(load_config('dnahnet-tiny'), seed=0)\n"
        "tokens = torch.randint(0, 4, (2, 300))\n"
        "out = model(tokens, return_state=True)\n"
        "out.logits.sum().backward()\n"
        "model(tokens[:, :5], state=out.state)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mamba_ssm'\n"
        "             or m == 'dnahnet_core.model.triton_conv'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


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
    """A preset with untrained weights, or "default": the shipped model. Its first
    stage's router is fairly decisive; its second stage's sits at the threshold (target
    ratio 2: the ratio loss does not push it off p = 0.5): on T4 DNA 14 % of its probabilities
    lie within 1e-3 of 0.5, so rounding alone can flip a decision (see `_first_flips`)."""
    model = load_model(None) if name == "default" else build_model(load_config(name), seed=0)
    return model.to(device)


def _run(model, tokens, precision: str, pure: bool, grad: bool = False, chunk_widths=()):
    """Log-probs, per-stage boundary probabilities and decisions, and (grad) the gradients
    of the training loss, on one back end."""
    def go():
        model.zero_grad(set_to_none=True)
        with torch.autocast(tokens.device.type, torch.bfloat16, enabled=precision == "bf16"):
            with torch.set_grad_enabled(grad):
                out = model(tokens, chunk_widths=chunk_widths)
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
    return differ / max(sum(m.numel() for m in a["masks"]), 1)  # no stages: 0


# a boundary decision may differ between back ends only where its probability is this
# close to the 0.5 threshold: far closer than any real signal, far wider than fp32 rounding
AT_THRESHOLD = 1e-3


def _first_flips(reference: dict, other: dict) -> list[int | None]:
    """Per batch row, the first position where a boundary decision differs (None: none).

    Rounding may flip a decision that sits at the threshold; every later output of that
    row may then differ (other chunks), every earlier one may not (causality). So only
    the first flip is judged: the outermost stage flipping there must be at the threshold.
    """
    firsts = []
    rows = (reference["masks"] or [reference.get("logp")])[0].shape[0]  # no stages: none flip
    for row in range(rows):
        first = stage = None
        for s, (mine, theirs) in enumerate(zip(reference["masks"], other["masks"], strict=True)):
            differ = (mine[row] != theirs[row]).nonzero()
            if len(differ) and (first is None or int(differ[0]) < first):
                first, stage = int(differ[0]), s
        if first is not None:
            margin = float((reference["probs"][stage][row, first] - 0.5).abs())
            assert margin < AT_THRESHOLD, (
                f"row {row}: stage {stage + 1}'s decision at {first} differs, "
                f"{margin:.1e} from the threshold")
        firsts.append(first)
    return firsts


def _assert_close_before(firsts: list[int | None], actual: torch.Tensor,
                         expected: torch.Tensor, **tolerance) -> None:
    """``actual`` and ``expected`` [b, L, ...] agree in each row before its first flip."""
    for row, first in enumerate(firsts):
        end = actual.shape[1] if first is None else first
        torch.testing.assert_close(actual[row, :end], expected[row, :end], **tolerance)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def _report(what: str, **measured) -> None:
    """One line of measured differences, before the asserts judge them (gpu_check.sh runs
    pytest with -s, so the numbers are in its report whether the test passes or not)."""
    print(f"\nagreement {what}: " + ", ".join(
        f"{k} {v:.2e}" if isinstance(v, float) else f"{k} {v}" for k, v in measured.items()),
          flush=True)


def _grad_error(grads: dict, reference: dict) -> float:
    """The largest relative error over parameters, ||g - g_ref|| / ||g_ref||."""
    return max(float((grads[n] - g).norm() / g.norm().clamp(min=1e-12)) for n, g in
               reference.items() if g.norm() > 1e-8)


def _grad_error_all(grads: dict, reference: dict) -> float:
    """The relative error of all the gradients as one vector: what an optimizer step
    follows. In bf16 the largest per-parameter error is a parameter whose gradient is
    tiny (the shipped model on 2 x 4,096 nt of Mycoplasma, CPU bf16: 0.27 at a D with a
    gradient norm of 1e-6, 0.008 over all)."""
    difference = sum(float((grads[n] - g).square().sum()) for n, g in reference.items())
    return (difference / max(sum(float(g.square().sum()) for g in reference.values()),
                             1e-24)) ** 0.5


def _tokens(batch: int, length: int, seed: int, device: str) -> torch.Tensor:
    return torch.randint(0, 4, (batch, length), generator=torch.Generator().manual_seed(seed))\
        .to(device)


def check_fp32_agreement(device: str, preset: str = "dnahnet-small", length: int = 4096,
                         batch: int = 2) -> None:
    """Log-probs and boundary probabilities agree before each row's first flipped decision
    (judged by `_first_flips`); gradients agree on a run with no flip, the tokens cut
    before the first flip when there was one (a flip changes every later gradient)."""
    model = _model(preset, device).train()
    tokens = _tokens(batch, length, 1, device)
    while True:
        fast = _run(model, tokens, "fp32", pure=False, grad=True)
        pure = _run(model, tokens, "fp32", pure=True, grad=True)
        firsts = _first_flips(pure, fast)
        _report(f"fp32 {preset} {batch}x{tokens.shape[1]}",
                logp=_max_diff(fast["logp"], pure["logp"]),
                probs=max((_max_diff(a, b) for a, b in zip(fast["probs"], pure["probs"])),
                          default=0.0),
                decisions_differ=_decisions_that_differ(fast, pure), first_flips=firsts,
                grad_rel_error=_grad_error(fast["grads"], pure["grads"]))
        _assert_close_before(firsts, fast["logp"], pure["logp"], rtol=1e-3, atol=1e-3)
        for pf, pp in zip(fast["probs"], pure["probs"], strict=True):
            _assert_close_before(firsts, pf, pp, rtol=1e-3, atol=1e-3)
        if all(first is None for first in firsts):
            break
        tokens = tokens[:, : min(first for first in firsts if first is not None)]
        assert tokens.shape[1] > 0, "a decision differs at the first position"
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
                     "grad_rel_error": _grad_error(r["grads"], exact["grads"]),
                     "grad_rel_error_all": _grad_error_all(r["grads"], exact["grads"])}
              for name, r in (("fast", fast), ("pure", pure))}
    for name, measured in errors.items():
        _report(f"bf16 {preset} {batch}x{length}, {name} vs exact fp32", **measured)
    fast_error, pure_error = errors["fast"], errors["pure"]
    assert fast_error["logp_mean"] <= 2 * pure_error["logp_mean"] + 1e-4
    assert fast_error["decisions_differ"] <= 2 * pure_error["decisions_differ"] + 1e-3
    assert fast_error["grad_rel_error"] <= 2 * pure_error["grad_rel_error"] + 1e-3
    assert fast_error["grad_rel_error_all"] <= 2 * pure_error["grad_rel_error_all"] + 1e-3


def check_rmsnorm_agreement(device: str, preset: str = "", length: int = 1000,
                            batch: int = 2) -> None:
    """Every RMSNorm, gated or not, on mamba-ssm's kernel against the pure one: values and
    the gradients of input, gate and weight, in fp32 and bf16 (``preset``: unused, for
    triton_interpreter's calling convention)."""
    from dnahnet_core.model.norms import GatedRMSNorm, RMSNorm

    gen = torch.Generator(device=device).manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        x, z = (torch.randn(batch, length, 320, device=device, generator=gen).to(dtype)
                for _ in range(2))
        for norm, args in ((RMSNorm(320), (x,)), (GatedRMSNorm(320), (x, z))):
            norm = norm.to(device)
            with torch.no_grad():
                norm.weight.normal_(1.0, 0.1, generator=gen)

            def run(norm=norm, args=args):
                inputs = [a.detach().requires_grad_() for a in args]
                out = norm(*inputs)
                (out.float() * torch.linspace(-1, 1, 320, device=device)).sum().backward()
                grads = [i.grad for i in inputs] + [norm.weight.grad.clone()]
                norm.weight.grad = None
                return out, grads

            fast, fast_grads = run()
            pure, pure_grads = _pure(run)
            _report(f"{type(norm).__name__} {str(dtype)[6:]} {batch}x{length}x320",
                    out=_max_diff(fast.detach(), pure.detach()), grads=max(
                        _max_diff(a, b) for a, b in zip(fast_grads, pure_grads, strict=True)))
            assert fast.dtype == pure.dtype == dtype
            if dtype == torch.float32:
                torch.testing.assert_close(fast, pure, rtol=1e-4, atol=1e-4)
                for got, want in zip(fast_grads, pure_grads, strict=True):
                    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
                continue
            # bf16: the pure gated norm rounds y * silu(z) to bf16 first, the kernel does
            # not; a weight's gradient sums those differences over every row
            torch.testing.assert_close(fast, pure, rtol=2e-2, atol=2e-2)
            for got, want in zip(fast_grads, pure_grads, strict=True):
                assert float((got.float() - want.float()).norm() / want.float().norm()) < 2e-2


def check_conv_agreement(device: str, preset: str = "", length: int = 1000,
                         batch: int = 2) -> None:
    """Mamba2's conv and SiLU on our Triton kernel (`triton_conv`) against the pure path,
    both against the exact float64 definition: values and the gradients of input, weight
    and bias, fresh and continuing a history, in fp32 and bf16 (the input a split of a
    wider projection, as in the model; 300 channels, not a whole number of blocks)."""
    from dnahnet_core.model.ssm import causal_depthwise_conv_reference, conv_silu, with_history

    gen = torch.Generator(device=device).manual_seed(0)
    channels, k = 300, 4
    weight = torch.randn(channels, 1, k, device=device, generator=gen) * 0.5
    bias = torch.randn(channels, device=device, generator=gen) * 0.1
    grad_out = torch.randn(batch, length, channels, device=device, generator=gen)
    for dtype in (torch.float32, torch.bfloat16):
        projection = torch.randn(batch, length, channels + 40, device=device, generator=gen)
        for history in (None, torch.randn(batch, k - 1, channels, device=device,
                                          generator=gen).to(dtype)):
            def run(x, w, b, history=history, exact=False):
                x, w, b = (t.detach().requires_grad_() for t in (x, w, b))
                if exact:
                    out = torch.nn.functional.silu(causal_depthwise_conv_reference(
                        with_history(x, None if history is None else history.double(), k),
                        w, b))
                else:
                    out = conv_silu(x, history, w, b)
                out.backward(grad_out.to(out.dtype))
                return [out.detach(), x.grad, w.grad, b.grad]

            conv_in = projection.to(dtype)[..., 20 : 20 + channels]  # strided, as a split
            exact = run(conv_in.double(), weight.double(), bias.double(), exact=True)
            fast = run(conv_in, weight, bias)
            pure = _pure(lambda conv_in=conv_in, run=run: run(conv_in, weight, bias))

            def errors(got, exact=exact):
                return [float((g.double() - e).norm() / e.norm()) for g, e in
                        zip(got, exact, strict=True)]

            fast_errors, pure_errors = errors(fast), errors(pure)
            names = ("out", "grad_x", "grad_w", "grad_b")
            _report(f"conv+silu {str(dtype)[6:]} {batch}x{length}x{channels} "
                    f"{'fresh' if history is None else 'with history'}",
                    **{f"{n}_fast": e for n, e in zip(names, fast_errors, strict=True)},
                    **{f"{n}_pure": e for n, e in zip(names, pure_errors, strict=True)})
            assert [t.dtype for t in fast] == [t.dtype for t in pure]
            bound = 1e-5 if dtype == torch.float32 else 1e-2
            for name, f, p in zip(names, fast_errors, pure_errors, strict=True):
                assert f <= max(bound, 1.5 * p), (name, f, p)


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
    # the single steps return no routing: decisions are compared over the two blocks
    routed = {"masks": [s.boundary_mask[:, :stepped] for s in full.stages],
              "probs": [s.boundary_prob[:, :stepped] for s in full.stages]}
    continued = {"masks": [torch.cat([a.boundary_mask, b.boundary_mask], 1)
                           for a, b in zip(first.stages, second.stages, strict=True)]}
    firsts = _first_flips(routed, continued)
    _report(f"incremental {preset} {batch}x{length}", logits=_max_diff(joined, full.logits),
            first_flips=firsts)
    _assert_close_before(firsts, joined, full.logits, rtol=1e-3, atol=1e-3)


def check_widths_agreement(device: str, preset: str = "dnahnet-small", length: int = 4096,
                           batch: int = 2) -> None:
    """fp32 forward and backward with each stage's inner length fixed above its chunk
    count (padded with invalid chunks, as model.graphs and train.graphs capture it)
    against the counted ones, both on the active path: the same log-probs and boundaries,
    and the same gradients when no decision flipped."""
    from dnahnet_core.model.graphs import widths_for

    model = _model(preset, device).train()
    tokens = _tokens(batch, length, 3, device)
    with torch.no_grad():
        widths = widths_for(model(tokens), length, slack=0.125)
    counted = _run(model, tokens, "fp32", pure=False, grad=True)
    fixed = _run(model, tokens, "fp32", pure=False, grad=True, chunk_widths=widths)
    firsts = _first_flips(counted, fixed)
    _report(f"widths {preset} {batch}x{length}", logp=_max_diff(fixed["logp"], counted["logp"]),
            first_flips=firsts, grad_rel_error=_grad_error(fixed["grads"], counted["grads"]))
    _assert_close_before(firsts, fixed["logp"], counted["logp"], rtol=1e-4, atol=1e-4)
    if all(first is None for first in firsts):  # a flip changes every later gradient
        assert _grad_error(fixed["grads"], counted["grads"]) < 1e-4


def check_capture(device: str, preset: str = "dnahnet-small", length: int = 4096,
                  batch: int = 2) -> None:
    """A bf16 training step with fixed chunk widths, as ``train --cuda-graphs`` captures
    it, on the active path: no op, mamba-ssm's wrappers and their backward included, reads
    a value back to the host (the pure path: test_train_graphs)."""
    from tests.test_train_graphs import fixed_width_step_breakers

    model = _model(preset, device).train()
    breakers = fixed_width_step_breakers(model, batch, length, bf16=True)
    _report(f"capture {preset} {batch}x{length}", host_reads=len(breakers))
    assert breakers == []


@contextlib.contextmanager
def _flip_second_stage(model, low: float, high: float):
    """Within the block, mirror the second router's probabilities around 0.5 where |p - 0.5| is in
    [low, high): those decisions flip, as rounding flips one that sits at the threshold."""
    def hook(module, args, output):
        p, state = output
        margin = (p - 0.5).abs()
        return torch.where((margin >= low) & (margin < high), 1.0 - p, p), state
    handle = model.backbone.inner.router.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def test_the_agreement_checks_judge_a_flip_by_its_margin_and_compare_before_it():
    """On the CPU with the shipped model: decisions flipped at the threshold are allowed,
    outputs before the first one still agree exactly while later ones do not (so cutting
    there is needed), and a decision flipped far from the threshold fails the check."""
    model = _model("default", "cpu").train()
    tokens = _tokens(2, 1024, 1, "cpu")
    exact = _run(model, tokens, "fp32", pure=True)
    with _flip_second_stage(model, 0.0, 2e-4):
        flipped = _run(model, tokens, "fp32", pure=True)
    firsts = _first_flips(exact, flipped)
    assert any(first is not None for first in firsts)
    _assert_close_before(firsts, flipped["logp"], exact["logp"], rtol=0, atol=0)
    with pytest.raises(AssertionError):  # the whole rows differ: the cut is needed
        torch.testing.assert_close(flipped["logp"], exact["logp"], rtol=1e-3, atol=1e-3)
    with _flip_second_stage(model, 1e-2, 2e-2):
        far = _run(model, tokens, "fp32", pure=True)
    with pytest.raises(AssertionError, match="from the threshold"):
        _first_flips(exact, far)


def test_a_bf16_training_step_follows_the_fp32_gradient(mycoplasma_contig):
    """bf16 autocast (here the CPU's, the pure path) against exact fp32 for the shipped
    model on real DNA: all the gradients as one vector within a few percent, though some
    parameters with tiny gradients are far off (what the GPU report's worst-parameter
    figure shows) and a few boundary decisions flip."""
    model = _model("default", "cpu").train()
    tokens = torch.from_numpy(encode(mycoplasma_contig[:2 * 2048])).long().view(2, 2048)
    exact = _run(model, tokens, "fp32", pure=True, grad=True)
    bf16 = _run(model, tokens, "bf16", pure=True, grad=True)
    overall = _grad_error_all(bf16["grads"], exact["grads"])
    _report("bf16 default 2x2048 Mycoplasma (CPU) vs exact fp32", grad_rel_error_all=overall,
            grad_rel_error=_grad_error(bf16["grads"], exact["grads"]),
            decisions_differ=_decisions_that_differ(bf16, exact))
    assert overall < 0.05
    assert float((bf16["logp"] - exact["logp"]).abs().mean()) < 2e-2


@needs_gpu
@pytest.mark.parametrize("preset", ["dnahnet-small", "dnahnet-2stage-r32", "default"])
def test_fp32_log_probs_boundaries_and_gradients_agree_on_gpu(preset):
    check_fp32_agreement("cuda", preset)


@needs_gpu
@pytest.mark.parametrize("preset", ["dnahnet-small", "default"])
def test_bf16_fast_path_is_as_close_to_fp32_as_the_pure_path_on_gpu(preset):
    check_bf16_agreement("cuda", preset)


@needs_gpu
def test_rmsnorms_agree_with_pure_path_on_gpu():
    check_rmsnorm_agreement("cuda")


@needs_gpu
def test_mamba2_conv_kernel_agrees_with_pure_path_on_gpu():
    check_conv_agreement("cuda")


@needs_gpu
@pytest.mark.parametrize("preset", ["dnahnet-small", "default"])
def test_incremental_continuation_equals_full_forward_on_gpu(preset):
    check_incremental_agreement("cuda", preset)


@needs_gpu
@pytest.mark.parametrize("preset", ["dnahnet-small", "default"])
def test_fixed_chunk_widths_give_the_counted_forward_and_backward_on_gpu(preset):
    check_widths_agreement("cuda", preset)


@needs_gpu
@pytest.mark.parametrize("preset", ["dnahnet-small", "default"])
def test_a_fast_path_training_step_with_fixed_widths_never_waits_for_the_device(preset):
    check_capture("cuda", preset)


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
    assert triton_interpreter.passed(check[0]) in done.stdout
