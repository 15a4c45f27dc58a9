"""The likelihood engine against the naive full-window computation, on real genome windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dnahnet_core.alphabet import encode, reverse_complement_tokens
from dnahnet_core.io.fasta import load_genome
from dnahnet_core.model import build_model, load_config
from dnahnet_core.tasks.engine import (
    Engine,
    Site,
    Substitution,
    forward_windows,
    sequence_log_likelihoods,
    stitched_predictions,
    stream_substitutions,
)
from dnahnet_core.tasks.windows import centred_window, substituted_window, window_tokens

DEMO = Path(__file__).resolve().parent.parent / "dnahnet_core" / "demo_data"
W = 256


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(load_config("dnahnet-tiny"), seed=0).eval()


@pytest.fixture(scope="module")
def contig():
    genome = load_genome(DEMO / "mycoplasma_alvi.fna.gz")
    return encode(genome["NZ_JNJU01000001.1"])


def _site(contig, pos, ref_len, alts, key=None):
    """Reference window centred on [pos, pos+ref_len) and ALT windows (equal length)."""
    win = centred_window(len(contig), pos, pos + ref_len, W)
    reference = window_tokens(contig, win)
    windows = [substituted_window(contig, win, pos, pos + ref_len, encode(a)) for a in alts]
    return Site(reference, windows, key)


@pytest.fixture(scope="module")
def sites(contig):
    def other(pos, shift=1):
        return "ACGT"[(int(contig[pos]) + shift) % 4]

    return [
        _site(contig, 5000, 1, [other(5000)], "snv"),
        _site(contig, 6000, 1, [other(6000, 1), other(6000, 2), other(6000, 3)], "multi"),
        _site(contig, 7000, 3, ["".join(other(7000 + i) for i in range(3))], "mnv"),
        _site(contig, 8000, 1, ["ACGTTG"[:1] + "TTAGC"], "insertion"),
        _site(contig, 9000, 5, ["A"], "deletion"),
        _site(contig, 100, 1, [other(100)], "clipped"),  # window cut by the contig start
        _site(contig, 10000, 2, [other(10000) + "G", "A" * 9], "mixed"),
    ]


@pytest.mark.parametrize("reverse_complement", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_engine_equals_naive(model, sites, reverse_complement, batch_size):
    fast = list(
        Engine(model, "cpu", batch_size=batch_size, reverse_complement=reverse_complement).score(
            sites
        )
    )
    naive = list(
        Engine(
            model, "cpu", batch_size=5, reverse_complement=reverse_complement, prefix_reuse=False
        ).score(sites)
    )
    assert [s.key for s in fast] == [s.key for s in sites]
    for a, b, site in zip(fast, naive, sites, strict=True):
        assert a.delta.shape == (len(site.alternatives),)
        np.testing.assert_allclose(a.forward, b.forward, atol=2e-3)
        np.testing.assert_allclose(a.reference_ll, b.reference_ll, rtol=1e-5)
        np.testing.assert_allclose(a.alternative_ll, b.alternative_ll, rtol=1e-5)
        if reverse_complement:
            np.testing.assert_allclose(a.reverse, b.reverse, atol=2e-3)
            np.testing.assert_allclose(a.delta, (a.forward + a.reverse) / 2)
        else:
            assert a.reverse is None


def test_scores_equal_direct_model_calls(model, sites):
    site = sites[1]
    got = next(Engine(model, "cpu", batch_size=2).score([site]))
    with torch.inference_mode():
        rows = torch.from_numpy(np.stack([site.reference, *site.alternatives]).astype(np.int64))
        totals = model.log_probs(rows).double().sum(-1).numpy()
    np.testing.assert_allclose(got.reference_ll, totals[0], rtol=1e-5)
    np.testing.assert_allclose(got.forward, totals[1:] - totals[0], atol=2e-3)


class _Counting(torch.nn.Module):
    """Counts the positions the engine sends through the model."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.positions = 0

    def forward(self, tokens, **kwargs):
        self.positions += tokens.numel()
        return self.inner(tokens, **kwargs)


def test_prefix_reuse_computes_fewer_positions(model, contig):
    snvs = [
        _site(contig, p, 1, ["ACGT"[(int(contig[p]) + 1) % 4]]) for p in range(20000, 20400, 50)
    ]
    fast, naive = _Counting(model), _Counting(model)
    a = list(Engine(fast, "cpu", batch_size=8).score(snvs))
    b = list(Engine(naive, "cpu", batch_size=8, prefix_reuse=False).score(snvs))
    assert naive.positions == len(snvs) * 2 * W
    # the prefix before the SNV once, then the rest of the window for REF and ALT
    before = (W - 1) // 2
    assert fast.positions == len(snvs) * (before + 2 * (W - before))
    np.testing.assert_allclose([s.delta[0] for s in a], [s.delta[0] for s in b], atol=2e-3)


def test_reverse_complement_averaging_is_symmetric(model, sites):
    engine = Engine(model, "cpu", batch_size=4, reverse_complement=True)
    flipped = [
        Site(
            reverse_complement_tokens(s.reference),
            [reverse_complement_tokens(a) for a in s.alternatives],
            s.key,
        )
        for s in sites
    ]
    for a, b in zip(engine.score(sites), engine.score(flipped), strict=True):
        np.testing.assert_allclose(a.forward, b.reverse, atol=2e-3)
        np.testing.assert_allclose(a.reverse, b.forward, atol=2e-3)
        np.testing.assert_allclose(a.delta, b.delta, atol=2e-3)
    # and the two strands really differ (the model is not strand-symmetric)
    first = next(engine.score(sites[:1]))
    assert abs(first.forward[0] - first.reverse[0]) > 1e-4


def test_forward_windows_matches_full_forward(model, contig):
    windows = [contig[1000:1300], contig[2000:2100], contig[3000:3257]]
    outs = list(forward_windows(model, windows, "cpu", batch_size=2))
    totals = sequence_log_likelihoods(model, windows, "cpu", batch_size=3)
    assert [len(o.log_probs) for o in outs] == [300, 100, 257]
    for out, window, total in zip(outs, windows, totals, strict=True):
        np.testing.assert_allclose(out.log_probs.sum(), total, rtol=1e-4)
        assert len(out.boundary_prob) == 2  # two-stage tiny model
        assert out.boundary_prob[0].shape == (len(window),)
        assert out.boundary_mask[0].dtype == bool
    with torch.inference_mode():
        alone = model.log_probs(torch.from_numpy(windows[1].astype(np.int64))[None])[0].numpy()
    np.testing.assert_allclose(outs[1].log_probs, alone, atol=1e-4)


def test_windows_clip_wrap_and_keep_length(contig):
    n = len(contig)
    win = centred_window(n, 100, 101, W)
    assert (win.start, win.end, win.clipped) == (0, 100 + 1 + (W - 1) - (W - 1) // 2, True)
    win = centred_window(n, 5000, 5001, W)
    assert (win.start, win.length, win.clipped) == (5000 - (W - 1) // 2, W, False)
    circ = centred_window(n, 10, 11, W, circular=True)
    assert circ.wrapped and circ.length == W and circ.start < 0
    tokens = window_tokens(contig, circ)
    np.testing.assert_array_equal(tokens[: -circ.start], contig[circ.start :])
    np.testing.assert_array_equal(tokens[-circ.start :], contig[: circ.end])
    # insertion / deletion: same start, same length, right edge moved
    ins = substituted_window(contig, win, 5000, 5001, encode("ATTT"))
    dele = substituted_window(contig, win, 5000, 5004, encode("A"))
    assert len(ins) == len(dele) == W
    left = 5000 - win.start
    np.testing.assert_array_equal(ins[left + 4 :], contig[5001 : 5001 + W - left - 4])
    np.testing.assert_array_equal(dele[left + 1 :], contig[5004 : 5004 + W - left - 1])


RUNNERS = {
    "forward_windows": lambda m, t: list(forward_windows(m, [t], "cpu")),
    "sequence_log_likelihoods": lambda m, t: sequence_log_likelihoods(m, [t], "cpu"),
    "stitched_predictions": lambda m, t: stitched_predictions(m, t, context=128, device="cpu"),
    "stream_substitutions": lambda m, t: stream_substitutions(
        m, t, [Substitution(50, encode("T"), "x")], tile=128, downstream=16, device="cpu"),
    "Engine": lambda m, t: list(Engine(m, "cpu").score([Site(t, [t[::-1].copy()], "x")])),
}


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_every_runner_puts_the_model_where_it_computes(runner, contig, monkeypatch):
    """The GPU suite (2026-11-23): segments and embeddings called with a model built on the
    CPU and device auto sent their inputs to the GPU and left the model on the CPU. Every
    runner now moves the model to its device and into eval mode (``ready_model``)."""
    moved = []
    to = torch.nn.Module.to

    def spy(module, *args, **kwargs):
        moved.append((module, torch.device(args[0] if args else kwargs["device"])))
        return to(module, *args, **kwargs)

    model = build_model(load_config("dnahnet-tiny"), seed=0).train()
    monkeypatch.setattr(torch.nn.Module, "to", spy)
    RUNNERS[runner](model, contig[:300].astype(np.int64))
    assert (model, torch.device("cpu")) in moved and not model.training
