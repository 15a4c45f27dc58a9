"""``dnahnet train --cuda-graphs`` (dnahnet_core.train.graphs): training steps replayed
from CUDA graphs.

On a CPU the graphs are stood in for by ``buffered_capture``, which keeps the contract of
``torch.cuda.make_graphed_callables`` that matters here: static output tensors that the
next call overwrites, and a backward that hands autograd its static gradient buffers.
The CUDA graphs themselves are checked where CUDA is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch

from dnahnet_core.alphabet import encode
from dnahnet_core.model import build_model, load_config, load_model
from dnahnet_core.model.config import list_presets
from dnahnet_core.model.graphs import FixedWidthForward, widths_for
from dnahnet_core.train import loop, resolve_options, train
from dnahnet_core.train.graphs import GraphedTrainingForward, cuda_training_capture
from dnahnet_core.train.metrics import read_metrics, token_nll

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def buffered_capture(module: torch.nn.Module, sample_args: tuple):
    """``make_graphed_callables``' contract, computed eagerly: inputs copied into static
    buffers, outputs written into static tensors (the same ones every call), a backward
    that returns static gradient buffers, which autograd adopts as a parameter's
    ``.grad`` when that is None, and the module's own forward replaced by the replay."""
    params = [p for p in module.parameters() if p.requires_grad]
    inputs = [a.clone() for a in sample_args]
    grads = [torch.zeros_like(p) for p in params]
    static, live = [], []
    original = module.forward

    class Replay(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *args):
            for buffer, arg in zip(inputs, args[:len(inputs)], strict=True):
                buffer.copy_(arg)
            with torch.enable_grad():
                live[:] = original(*inputs)
            if not static:
                static.extend(o.detach().clone() for o in live)
            for buffer, out in zip(static, live, strict=True):
                buffer.copy_(out.detach())
            return tuple(s.detach() for s in static)

        @staticmethod
        def backward(ctx, *output_grads):
            pairs = [(o, g) for o, g in zip(live, output_grads, strict=True) if o.requires_grad]
            # every parameter must be used, as make_graphed_callables demands by default
            new = torch.autograd.grad([o for o, _ in pairs], params, [g for _, g in pairs])
            for buffer, g in zip(grads, new, strict=True):
                buffer.copy_(g)
            return (None,) * len(inputs) + tuple(g.detach() for g in grads)

    # as make_graphed_callables does with a module: its forward is replaced in place
    module.forward = lambda *args: Replay.apply(*args, *params)
    return module


@pytest.fixture(scope="module")
def batches(mycoplasma_contig):
    """Two batches of 2 x 512 nt of a real genome, the second row of each half masked."""
    tokens = torch.from_numpy(encode(mycoplasma_contig[:4 * 512])).long().view(4, 512)
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[1::2, 300:] = False
    return [(tokens[:2], mask[:2]), (tokens[2:], mask[2:])]


def _step_gradients(model, forward, batches) -> tuple[list[float], dict]:
    """Losses and the gradients summed over ``batches`` (one step, gradient accumulation),
    from gradients set to None, as the optimizer leaves them."""
    model.zero_grad(set_to_none=True)
    losses = []
    for tokens, mask in batches:
        out = forward(tokens, mask)
        loss = token_nll(out.logits, tokens, mask) / mask.sum() + 0.02 * out.ratio_loss
        loss.backward()
        losses.append(loss.item())
    return losses, {n: p.grad.clone() for n, p in model.named_parameters()}


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).norm() / want.norm().clamp(min=1e-12)).item()


def test_accumulated_graphed_steps_give_the_gradients_of_the_model(batches):
    """Two micro-batches into gradients that start as None: the graph's backward hands
    back its static buffers, so without the gradients kept defined the second backward
    would overwrite the first's sum."""
    model = load_model(None).train()
    want_losses, want = _step_gradients(model, model, batches)
    net = GraphedTrainingForward(model, capture=buffered_capture)
    for _ in range(2):  # the capture's step, then a step replayed from the start
        losses, got = _step_gradients(model, net, batches)
        assert losses == pytest.approx(want_losses, rel=1e-5)
        for name in want:
            assert _relative(got[name], want[name]) < 1e-4, name
    assert (net.captures, net.replays, net.overflows) == (1, 4, 0)
    assert net.off_because is None and not any(p.grad is None for p in model.parameters())


def test_the_stand_in_shares_gradient_buffers_as_cuda_graphs_do(batches):
    """Why the gradients are kept defined: the same two backwards straight through the
    stand-in sum wrongly from None, and rightly from zeros (this test fails if the
    stand-in stops modelling the hazard)."""
    model = load_model(None).train()
    _, want = _step_gradients(model, model, batches)
    with torch.no_grad():
        widths = widths_for(model(*batches[0]), 512, slack=0.5)
    run = buffered_capture(FixedWidthForward(model, widths), batches[0])

    def raw(tokens, mask):
        logits, ratio_loss, overflow, *_ = run(tokens, mask)
        assert not overflow
        return type("Out", (), {"logits": logits, "ratio_loss": ratio_loss})

    _, from_none = _step_gradients(model, raw, batches)
    assert max(_relative(from_none[n], want[n]) for n in want) > 0.1

    def from_zeros(tokens, mask):
        for p in model.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        return raw(tokens, mask)

    _, kept = _step_gradients(model, from_zeros, batches)
    assert max(_relative(kept[n], want[n]) for n in want) < 1e-4


def test_a_step_whose_chunks_overflow_runs_eagerly_and_the_next_captures_wider(batches):
    model = load_model(None).train()
    net = GraphedTrainingForward(model, capture=buffered_capture)
    tokens, mask = batches[0]
    net(torch.zeros_like(tokens), mask)  # poly-A: a handful of chunks sets narrow widths
    (narrow,) = net.graphs.values()
    out = net(tokens, mask)  # the genome's chunks do not fit
    assert (net.captures, net.overflows) == (1, 1) and not net.graphs
    want = model(tokens, mask)
    torch.testing.assert_close(out.logits, want.logits, rtol=0, atol=1e-5)
    assert out.logits.requires_grad  # the step trains on it
    net(tokens, mask)
    (wide,) = net.graphs.values()
    assert net.captures == 2 and all(
        w > n for w, n in zip(wide.widths, narrow.widths, strict=True))
    counts = [int(s.chunk_count.max()) for s in want.stages]
    assert (narrow.slack, wide.slack) == (0.125, 0.25)  # each overflow doubles the slack
    assert all(w >= 1.25 * c for w, c in zip(wide.widths, counts, strict=True))
    again = net(*batches[1])
    assert net.overflows == 1 and net.replays == 4
    torch.testing.assert_close(again.logits, model(*batches[1]).logits, rtol=0, atol=1e-4)
    assert [int(s.chunk_count.max()) for s in again.stages] == [
        int(s.chunk_count.max()) for s in model(*batches[1]).stages]


def test_a_capture_that_fails_turns_the_graphs_off_and_training_goes_on(batches, capsys):
    model = load_model(None).train()

    def failing(module, sample_args):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\n"
                           "more detail")

    net = GraphedTrainingForward(model, capture=failing)
    out = net(*batches[0])
    torch.testing.assert_close(out.logits, model(*batches[0]).logits, rtol=0, atol=0)
    assert net.off_because.startswith("capturing a step of (2, 512) failed: RuntimeError")
    net(*batches[1])
    assert net.captures == 0 and net.replays == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        "warning: CUDA graphs turned off, training goes on without them: capturing a step "
        "of (2, 512) failed: RuntimeError: CUDA error: operation not permitted when stream "
        "is capturing"]


class _Wrong:
    """Stand-ins for captures that compute something else than the eager step (the
    module's forward replaced, as a capture does)."""

    @staticmethod
    def logits(module, sample_args):
        replay = buffered_capture(module, sample_args).forward
        module.forward = lambda *args: (lambda logits, *rest: (logits + 0.5, *rest))(
            *replay(*args))
        return module

    @staticmethod
    def gradients(module, sample_args):
        replay = buffered_capture(module, sample_args).forward

        class Scaled(torch.autograd.Function):  # the backward 10 % too large
            @staticmethod
            def forward(ctx, logits):
                return logits.view_as(logits)

            @staticmethod
            def backward(ctx, grad):
                return grad * 1.1

        module.forward = lambda *args: (lambda logits, *rest: (Scaled.apply(logits), *rest))(
            *replay(*args))
        return module


@pytest.mark.parametrize("wrong", ["logits", "gradients"])
def test_a_capture_unlike_the_eager_step_turns_the_graphs_off(batches, capsys, wrong):
    model = load_model(None).train()
    net = GraphedTrainingForward(model, capture=getattr(_Wrong, wrong))
    out = net(*batches[0])
    torch.testing.assert_close(out.logits, model(*batches[0]).logits, rtol=0, atol=1e-5)
    assert net.off_because.startswith("a replay differs from the same step run eagerly")
    logits, gradients = map(float, re.findall(r"by (\S+?)[,\s]", net.off_because)[:2])
    assert (logits > 1e-2) == (wrong == "logits") and gradients > 1e-2
    assert "warning: CUDA graphs turned off" in capsys.readouterr().err


def test_baselines_train_through_the_graphs_too(batches):
    model = build_model(load_config("transformer-small"), seed=0).train()
    _, want = _step_gradients(model, model, batches)
    net = GraphedTrainingForward(model, capture=buffered_capture)
    _, got = _step_gradients(model, net, batches)
    assert net.replays == 2 and max(_relative(got[n], want[n]) for n in want) < 1e-5


def fixed_width_step_breakers(model, batch: int, length: int, bf16: bool) -> list[str]:
    """The ops of one training step (forward and backward) that ``make_graphed_callables``
    cannot capture (``tests.test_graphs._CaptureBreakers``), each stage's inner length fixed
    as ``train --cuda-graphs`` fixes it; the batch's last row is padded after 5/7 of it."""
    from tests.test_graphs import _CaptureBreakers

    device = next(model.parameters()).device
    tokens = torch.randint(0, 4, (batch, length), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[-1, length * 5 // 7:] = False
    tokens, mask = tokens.to(device), mask.to(device)
    with torch.no_grad():
        widths = widths_for(model(tokens, mask), length, 0.125)
    fixed = FixedWidthForward(model, widths)
    with torch.autocast(device.type, torch.bfloat16, enabled=bf16), \
            _CaptureBreakers() as breakers:
        logits, ratio_loss, *_ = fixed(tokens, mask)
        (logits.float().square().mean() + ratio_loss).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    return breakers.seen


@pytest.mark.parametrize(("preset", "bf16"), [
    *[(preset, False) for preset in list_presets()], ("dnahnet-tiny", True),
    pytest.param("dnahnet-2stage-r32", True, marks=pytest.mark.slow)])
def test_a_training_step_with_fixed_widths_never_waits_for_the_device(preset, bf16):
    """What ``make_graphed_callables`` needs of the step it captures, backward included:
    no op reads a value back to the host or copies host data to the device (every preset
    in fp32, autocast's bf16 casts on two; mamba-ssm's kernels: test_fast_path's
    ``check_capture``)."""
    model = build_model(load_config(preset), seed=0).train()
    assert fixed_width_step_breakers(model, 2, 700, bf16) == []


# --- the training loop ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from tests.test_train_distributed import _prepare

    return _prepare(tmp_path_factory.mktemp("prepared") / "data")


def _options(prepared, out, **kw):
    values = dict(data=str(prepared), config="dnahnet-tiny", out=str(out), max_steps=4,
                  batch_size=2, grad_accum=2, log_every=1, eval_every=4, eval_fragments=4,
                  save_every=2, device="cpu", lr=3e-3)
    values.update(kw)
    return resolve_options(values, resume=False)


def test_a_graphed_run_trains_as_the_eager_run(prepared, tmp_path, monkeypatch):
    nets = []

    def graphed(model, world, precision):
        nets.append(GraphedTrainingForward(model, precision=precision,
                                           capture=buffered_capture))
        return nets[-1]

    monkeypatch.setattr(loop, "graphed_for_training", graphed)
    train(_options(prepared, tmp_path / "eager"), show_progress=False)
    train(_options(prepared, tmp_path / "graphed", cuda_graphs=True), show_progress=False)
    (net,) = nets
    assert net.off_because is None  # 4 steps of 2 micro-batches, all replayed:
    assert (net.captures, net.replays, net.overflows) == (1, 8, 0)
    records = {name: [r for r in read_metrics(tmp_path / name) if r["kind"] == "train"]
               for name in ("eager", "graphed")}
    assert len(records["graphed"]) == 4
    for mine, theirs in zip(records["graphed"], records["eager"], strict=True):
        for field in ("loss", "grad_norm", "compression_0", "selected_1"):
            assert mine[field] == pytest.approx(theirs[field], rel=1e-4), field
    assert read_metrics(tmp_path / "graphed")[-1]["kind"] == "val"


def _train_command(prepared, out, *flags) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dnahnet_cli", "train", "--data", str(prepared), "--config",
         "dnahnet-tiny", "--out", str(out), "--max-steps", "1", *flags],
        capture_output=True, text=True, env=dict(os.environ, WORLD_SIZE="1"))


def test_cuda_graphs_where_they_cannot_run_is_a_one_line_error(prepared, tmp_path):
    proc = _train_command(prepared, tmp_path / "cpu", "--device", "cpu", "--cuda-graphs")
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
        "dnahnet: error: --cuda-graphs: CUDA graphs need a CUDA device; this run is on cpu "
        "(leave --cuda-graphs out)")
    assert "Traceback" not in proc.stderr and not (tmp_path / "cpu").exists()
    proc = _train_command(prepared, tmp_path / "both", "--compile", "--cuda-graphs")
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        "dnahnet: error: --compile and --cuda-graphs: choose one"]
    # a resume that refuses writes nothing: the run's saved options stay as they were
    run = tmp_path / "run"
    assert _train_command(prepared, run, "--device", "cpu").returncode == 0
    saved = (run / "run.json").read_text()
    proc = subprocess.run(
        [sys.executable, "-m", "dnahnet_cli", "train", "--out", str(run), "--resume",
         "--max-steps", "2", "--cuda-graphs"],
        capture_output=True, text=True, env=dict(os.environ, WORLD_SIZE="1"))
    assert proc.returncode == 1 and "--cuda-graphs: CUDA graphs need a CUDA device" in proc.stderr
    assert (run / "run.json").read_text() == saved and '"cuda_graphs": false' in saved


def test_the_cuda_capture_needs_a_cuda_model():
    model = build_model(load_config("dnahnet-tiny"), seed=0)
    with pytest.raises(ValueError, match="CUDA graphs need the model on a CUDA device"):
        GraphedTrainingForward(model)


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_graphed_steps_agree_with_eager_steps(batches, precision):
    """On CUDA, two accumulated micro-batches: the graphed step against eager steps with
    the same widths (the same kernels: rounding of the replay only) and with counted
    widths (printed into the report)."""
    model = load_model(None).cuda().train()
    batches = [(t.cuda(), m.cuda()) for t, m in batches]
    net = GraphedTrainingForward(model, precision=precision, capture=cuda_training_capture)
    bf16 = precision == "bf16"

    def under_autocast(forward):
        def run(tokens, mask):
            with torch.autocast("cuda", torch.bfloat16, enabled=bf16):
                return forward(tokens, mask)
        return run

    _step_gradients(model, under_autocast(net), batches)  # captures
    losses, got = _step_gradients(model, under_autocast(net), batches)  # replays
    assert net.off_because is None and net.captures == 1 and net.overflows == 0
    (graph,) = net.graphs.values()
    fixed = FixedWidthForward(model, graph.widths)

    def same_widths(tokens, mask):
        logits, ratio_loss, *_ = fixed(tokens, mask)
        return type("Out", (), {"logits": logits, "ratio_loss": ratio_loss})

    same_losses, same = _step_gradients(model, under_autocast(same_widths), batches)
    counted_losses, counted = _step_gradients(model, under_autocast(model), batches)
    tolerance = 1e-2 if bf16 else 1e-4
    assert losses == pytest.approx(same_losses, rel=tolerance)
    worst_same = max(_relative(got[n], same[n]) for n in same)
    worst_counted = max(_relative(got[n], counted[n]) for n in counted)
    assert worst_same < tolerance * 10
    print(f"agreement cuda-graphs training {precision}: loss {losses} vs {counted_losses} "
          f"counted; largest relative gradient difference {worst_same:.2e} against eager "
          f"with the same widths, {worst_counted:.2e} with counted widths")
