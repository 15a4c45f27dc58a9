"""Static chunk widths and forwards replayed from graphs (dnahnet_core.model.graphs).

On a CPU the graph logic runs with ``eager_capture`` (a replay recomputes into the static
outputs, as a CUDA graph does); the CUDA graphs themselves are checked where CUDA is.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from dnahnet_core.alphabet import encode
from dnahnet_core.model import build_model, load_config, load_model
from dnahnet_core.model.graphs import (
    FixedWidthForward,
    GraphedForward,
    cuda_capture,
    eager_capture,
    widths_for,
)
from dnahnet_core.train.metrics import token_nll

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(scope="module")
def default_model():
    return load_model(None).eval()


@pytest.fixture(scope="module")
def windows(mycoplasma_contig):
    """Four 2,048-nt windows of a real genome, as a batch of two twice."""
    tokens = torch.from_numpy(encode(mycoplasma_contig[: 4 * 2048])).long().view(4, 2048)
    return tokens[:2], tokens[2:]


def _forward(model, tokens, mask=None, **options):
    with torch.inference_mode():
        return model(tokens, mask, **options)


def _assert_same_output(got, want, atol=1e-4):
    torch.testing.assert_close(got.logits, want.logits, rtol=0, atol=atol)
    assert len(got.stages) == len(want.stages)
    for mine, theirs in zip(got.stages, want.stages, strict=True):
        assert torch.equal(mine.boundary_mask, theirs.boundary_mask)
        assert torch.equal(mine.chunk_count, theirs.chunk_count)
        torch.testing.assert_close(mine.boundary_prob, theirs.boundary_prob, rtol=0, atol=1e-5)


def test_fixed_widths_give_the_forward_of_counted_widths(default_model, windows):
    tokens = windows[0]
    counted = _forward(default_model, tokens)
    counts = [int(s.chunk_count.max()) for s in counted.stages]
    assert counts[0] < 2049 and counts[1] < counts[0]  # the model compresses this genome
    wider = (counts[0] + 77, counts[1] + 5)  # invalid chunks at the ends of the rows
    _assert_same_output(_forward(default_model, tokens, chunk_widths=wider), counted)
    exact = tuple(counts)
    _assert_same_output(_forward(default_model, tokens, chunk_widths=exact), counted)


def test_too_narrow_widths_are_seen_in_the_chunk_counts_and_never_index_out_of_range(
        default_model, windows):
    tokens = windows[0]
    counted = _forward(default_model, tokens)
    counts = [int(s.chunk_count.max()) for s in counted.stages]
    for narrow in [(counts[0] // 2, counts[1]), (counts[0], counts[1] // 3)]:
        out = _forward(default_model, tokens, chunk_widths=narrow)
        assert torch.isfinite(out.logits).all()
        overflow = [int(s.chunk_count.max()) > w for s, w in zip(out.stages, narrow, strict=True)]
        assert any(overflow)
    with pytest.raises(ValueError, match="3 chunk widths for 2 stages"):
        _forward(default_model, tokens, chunk_widths=(10, 10, 10))


class _CaptureBreakers(TorchDispatchMode):
    """Counts the ops a CUDA graph capture cannot hold: reads from the device to the host,
    tensors made from host data (a copy to the device), copies between devices (seen on
    a GPU only), and ops whose output size is data, which CUDA computes by a read to the
    host although a CPU kernel hides it (a boolean index, ``masked_select``,
    ``repeat_interleave`` by a tensor, ``unique``...)."""

    ALWAYS = {"aten::_local_scalar_dense", "aten::item", "aten::nonzero", "aten::is_nonzero",
              "aten::lift_fresh", "aten::masked_select", "aten::equal", "aten::bincount",
              "aten::_unique", "aten::_unique2", "aten::unique_dim", "aten::unique_consecutive"}

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []  # the breaking ops, in order

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        kwargs = kwargs or {}
        if (name in self.ALWAYS or self._sizes_from_data(name, func, args, kwargs)
                or self._between_devices(name, args, kwargs)):
            self.seen.append(str(func))
        return func(*args, **kwargs)

    @staticmethod
    def _sizes_from_data(name, func, args, kwargs) -> bool:
        if name in ("aten::index", "aten::index_put", "aten::index_put_",
                    "aten::_index_put_impl_"):
            return any(i is not None and i.dtype == torch.bool for i in args[1])
        if name == "aten::repeat_interleave" and func._overloadname == "Tensor":
            return kwargs.get("output_size") is None  # given: no read
        return False

    @staticmethod
    def _between_devices(name, args, kwargs) -> bool:
        if name == "aten::_to_copy":  # .to(device), .cpu(), .tolist()
            device = kwargs.get("device")
            return device is not None and torch.device(device).type != args[0].device.type
        if name == "aten::copy_":
            return args[0].device.type != args[1].device.type
        return False


def test_the_capture_breakers_are_seen_and_nothing_else():
    """The detector the host-read tests rely on (the meta device stands in for a GPU)."""
    x = torch.arange(6.0)
    with _CaptureBreakers() as breakers:
        y = (x * 2).view(2, 3).sum(0)  # stays on the device
        y[y > 3] = 0.0  # a tensor from host data (0.0), and a boolean index: its size is data
        y.to("meta")  # a copy between devices
        torch.empty(3, device="meta").copy_(y)
        x.max().item()  # a read back to the host
    assert [op.split(".")[1] for op in breakers.seen] == [
        "lift_fresh", "index_put_", "_to_copy", "copy_", "_local_scalar_dense"]


@pytest.mark.parametrize("preset", ["dnahnet-2stage-r32", "dnahnet-1stage"])
def test_a_forward_with_fixed_widths_never_waits_for_the_device(preset):
    """What a CUDA graph needs: with chunk widths no op reads a value back to the host."""
    model = build_model(load_config(preset), seed=0).eval()
    tokens = torch.randint(0, 4, (2, 700), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[1, 500:] = False
    widths = widths_for(_forward(model, tokens, mask), 700, 0.125)
    with _CaptureBreakers() as counted:
        _forward(model, tokens, mask)
    with _CaptureBreakers() as fixed:
        _forward(model, tokens, mask, chunk_widths=widths)
    assert len(counted.seen) == model.config.num_stages and fixed.seen == []


def test_widths_are_buckets_above_the_counts_within_each_stage_input(default_model, windows):
    out = _forward(default_model, windows[0])
    counts = [int(s.chunk_count.max()) for s in out.stages]
    widths = widths_for(out, 2048, 0.125)
    for count, width in zip(counts, widths, strict=True):
        assert width % 64 == 0 and count * 1.125 <= width < count * 1.125 + 64
    assert widths_for(out, 2048, 0.125, at_least=(4000, 9999)) == (2049, 2049)  # input lengths
    assert widths_for(out, 2048, 0.0, at_least=(1984,))[0] == 1984


def test_replays_give_each_input_its_own_forward(default_model, windows):
    forward = GraphedForward(default_model, capture=eager_capture)
    first = forward(windows[0])  # eager, then captured
    assert (forward.captures, forward.replays) == (1, 0)
    second = forward(windows[1])
    third = forward(windows[0])
    assert (forward.captures, forward.replays, forward.overflows) == (1, 2, 0)
    _assert_same_output(second, _forward(default_model, windows[1]))
    _assert_same_output(third, first)
    # each call's tensors are its own: the next replay did not overwrite them
    assert not torch.equal(second.logits, third.logits)
    _assert_same_output(first, _forward(default_model, windows[0]))


def test_a_replay_whose_chunks_overflow_is_run_again_and_widens_the_buckets(
        default_model, windows):
    forward = GraphedForward(default_model, capture=eager_capture)
    genome = windows[0][:, :1024]
    repeat = torch.zeros_like(genome)  # poly-A: a handful of chunks
    forward(repeat)
    (narrow,) = forward.graphs.values()
    assert narrow.widths[0] < int(_forward(default_model, genome).stages[0].chunk_count.max())
    got = forward(genome)  # overflows the first stage's width: computed again, eagerly
    assert (forward.replays, forward.overflows, forward.captures) == (1, 1, 2)
    _assert_same_output(got, _forward(default_model, genome))
    (wide,) = forward.graphs.values()
    assert all(w > n for w, n in zip(wide.widths, narrow.widths, strict=True))
    _assert_same_output(forward(repeat), _forward(default_model, repeat))
    _assert_same_output(forward(genome), got)
    assert (forward.replays, forward.overflows) == (3, 1)


def test_masks_and_shapes_each_have_a_graph_and_the_oldest_goes(default_model, windows):
    forward = GraphedForward(default_model, capture=eager_capture, max_graphs=2)
    tokens = windows[0]
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[1, 1500:] = False
    for _ in range(2):
        masked = forward(tokens, mask)
    _assert_same_output(masked, _forward(default_model, tokens, mask))
    forward(tokens)
    forward(tokens[:, :512])
    assert len(forward.graphs) == 2 and forward.captures == 3
    assert list(forward.graphs)[0] == ((2, 2048), tokens.dtype, True)  # the masked one went


def test_baselines_have_no_widths_and_replay_as_well(windows):
    model = build_model(load_config("transformer-small"), seed=0).eval()
    forward = GraphedForward(model, capture=eager_capture)
    tokens = windows[0][:, :256]
    forward(tokens)
    out = forward(windows[1][:, :256])
    assert forward.replays == 1 and not out.stages
    torch.testing.assert_close(out.logits, _forward(model, windows[1][:, :256]).logits,
                               rtol=0, atol=1e-5)


def test_training_through_fixed_widths_gives_the_gradients_of_counted_widths(windows):
    """What a graphed training step (FixedWidthForward) computes: the loss and gradients
    of the ordinary forward, and whether the widths held."""
    model = load_model(None).train()
    tokens = windows[0][:, :1024]
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[1, 900:] = False

    def step(forward):
        model.zero_grad(set_to_none=True)
        logits, ratio_loss = forward()
        loss = token_nll(logits, tokens, mask) / mask.sum() + 0.02 * ratio_loss
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                               if p.grad is not None}

    def counted():
        out = model(tokens, mask)
        return out.logits, out.ratio_loss

    with torch.no_grad():
        widths = widths_for(model(tokens, mask), 1024, slack=0.125)
    fixed = FixedWidthForward(model, widths)
    want_loss, want = step(counted)
    got_loss, got = step(lambda: fixed(tokens, mask)[:2])
    assert not fixed(tokens, mask)[2]
    torch.testing.assert_close(got_loss, want_loss, rtol=1e-5, atol=0)
    assert got.keys() == want.keys() and len(got) == len(list(model.parameters()))
    for name in want:
        error = (got[name] - want[name]).norm() / want[name].norm().clamp(min=1e-12)
        assert error < 1e-4, name
    assert FixedWidthForward(model, (widths[0] // 2, widths[1]))(tokens, mask)[2]


def test_precision_and_device_are_checked():
    model = build_model(load_config("dnahnet-tiny"), seed=0)
    with pytest.raises(ValueError, match="fp32 or bf16"):
        GraphedForward(model, precision="fp16", capture=eager_capture)
    with pytest.raises(ValueError, match="CUDA graphs need the model on a CUDA device"):
        GraphedForward(model)


def test_calls_in_and_out_of_inference_mode_mix(windows):
    model = build_model(load_config("dnahnet-tiny"), seed=0).eval()
    forward = GraphedForward(model, capture=eager_capture)
    with torch.inference_mode():
        forward(windows[0][:, :300])
    out = forward(windows[1][:, :300])  # the static inputs were made in inference mode
    torch.testing.assert_close(out.logits, _forward(model, windows[1][:, :300]).logits,
                               rtol=0, atol=1e-5)


def _agree(got, want, atol: float) -> float:
    """Outputs that agree the way rounding lets two runs agree: decisions may differ
    only first at the threshold (`test_fast_path._first_flips`), logits agree within
    ``atol`` up to each row's first flip. Returns the largest logit difference there."""
    from tests.test_fast_path import _first_flips

    firsts = _first_flips(
        {"masks": [s.boundary_mask for s in want.stages],
         "probs": [s.boundary_prob.float() for s in want.stages]},
        {"masks": [s.boundary_mask for s in got.stages]})
    worst = 0.0
    for row, first in enumerate(firsts):
        end = got.logits.shape[1] if first is None else first
        diff = (got.logits[row, :end] - want.logits[row, :end]).abs().max().item()
        assert diff <= atol, f"row {row}: logits differ by {diff:.2e} before position {end}"
        worst = max(worst, diff)
    return worst


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_graph_replays_agree_with_eager_forwards(windows, precision):
    """On CUDA: the captured graph against eager forwards with the same widths (the same
    kernels) and with counted widths (longer inner sequences: rounding only)."""
    model = load_model(None).cuda().eval()
    forward = GraphedForward(model, precision=precision, capture=cuda_capture)
    first, second = (t.cuda() for t in windows)
    forward(first)
    (graph,) = forward.graphs.values()
    replayed = forward(second)
    assert forward.replays == 1 and forward.overflows == 0
    with torch.autocast("cuda", torch.bfloat16, enabled=precision == "bf16"):
        same_widths = _forward(model, second, chunk_widths=graph.widths)
        counted = _forward(model, second)
    atol = 1e-4 if precision == "fp32" else 0.1
    same = _agree(replayed, same_widths, atol)
    other = _agree(replayed, counted, atol)
    print(f"agreement cuda-graphs {precision}: max |Δ logit| before any flipped decision: "
          f"{same:.2e} against eager with the same widths, {other:.2e} with counted widths")
