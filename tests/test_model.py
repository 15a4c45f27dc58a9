"""The dnaHNet model: causality, chunking statistics, ratio loss, presets, attention window."""

import math

import pytest
import torch
import torch.nn.functional as F

from dnahnet_core.errors import DnahnetError
from dnahnet_core.model import build_model, list_presets, load_config, load_model, save_model
from dnahnet_core.model.attention import Attention
from dnahnet_core.model.chunking import ratio_loss

SMALL_LENGTH = 96


def _tokens(length, batch=2, seed=0):
    return torch.randint(0, 5, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_is_causal(preset):
    cfg = load_config(preset)
    cfg.attn_window = min(cfg.attn_window, 32)  # exercise the windowed path at a short length
    model = build_model(cfg, seed=1).eval()
    x = _tokens(SMALL_LENGTH)
    t = 57
    y = x.clone()
    y[:, t + 1 :] = (y[:, t + 1 :] + 1) % 4
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a.logits[:, : t + 1], b.logits[:, : t + 1], rtol=0, atol=1e-5)
    assert not torch.allclose(a.logits[:, t + 2 :], b.logits[:, t + 2 :])
    for sa, sb in zip(a.stages, b.stages):
        assert torch.equal(sa.boundary_mask[:, : t + 1], sb.boundary_mask[:, : t + 1])


def test_stage_statistics_are_consistent():
    model = build_model(load_config("dnahnet-tiny"), seed=0).eval()
    out = model(_tokens(200))
    assert len(out.stages) == 2
    s1, s2 = out.stages
    assert s1.boundary_prob.shape == (2, 200) and s2.boundary_mask.shape == (2, 200)
    # a stage-2 chunk can only start where a stage-1 chunk starts
    assert not (s2.boundary_mask & ~s1.boundary_mask).any()
    assert ((s1.boundary_prob >= 0.5) == s1.boundary_mask).all()
    assert s1.compression >= 1 and s2.compression >= 1
    expected = sum(
        s.target_ratio
        / (s.target_ratio - 1)
        * (
            (s.target_ratio - 1) * s.selected_fraction * s.mean_prob
            + (1 - s.selected_fraction) * (1 - s.mean_prob)
        )
        for s in out.stages
    )
    torch.testing.assert_close(out.ratio_loss, expected)


def test_ratio_loss_formula_and_minimum():
    R = 3.0
    p = torch.tensor([[0.9, 0.2, 0.1, 0.8, 0.3, 0.4]])
    boundary = p >= 0.5
    valid = torch.ones_like(boundary)
    loss, F_, G = ratio_loss(p, boundary, valid, R)
    assert F_.item() == pytest.approx(2 / 6)
    assert G.item() == pytest.approx(p.mean().item())
    assert loss.item() == pytest.approx(
        R / (R - 1) * ((R - 1) * F_ * G + (1 - F_) * (1 - G)).item()
    )

    # along F = G = x the loss is minimal (= 1) at x = 1/R
    def along_diagonal(x):
        return R / (R - 1) * ((R - 1) * x * x + (1 - x) * (1 - x))

    xs = torch.linspace(0.01, 0.99, 99)
    best = xs[torch.argmin(torch.stack([along_diagonal(x) for x in xs]))]
    assert best.item() == pytest.approx(1 / R, abs=0.01)
    assert along_diagonal(torch.tensor(1 / R)).item() == pytest.approx(1.0)


def test_ratio_loss_ignores_padding():
    p = torch.tensor([[0.9, 0.1, 0.9, 0.1]])
    valid = torch.tensor([[True, True, False, False]])
    _, F_, G = ratio_loss(p, p >= 0.5, valid, 2.0)
    assert F_.item() == pytest.approx(0.5) and G.item() == pytest.approx(0.5)


def test_padding_does_not_change_valid_positions():
    model = build_model(load_config("dnahnet-tiny"), seed=0).eval()
    x = _tokens(120, batch=1)
    padded = torch.cat([x, torch.full((1, 40), 4)], dim=1)
    mask = torch.zeros(1, 160, dtype=torch.bool)
    mask[:, :120] = True
    with torch.no_grad():
        a = model(x)
        b = model(padded, mask=mask)
    torch.testing.assert_close(a.logits, b.logits[:, :120], rtol=0, atol=1e-5)
    torch.testing.assert_close(a.ratio_loss, b.ratio_loss, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["dnahnet-tiny", "default"])
def test_boundaries_alone_equal_the_forward_passes(name):
    """DnaLM.boundaries (encoders and routers only) gives forward's stages exactly."""
    model = load_model(None) if name == "default" else build_model(load_config(name), seed=0)
    tokens = _tokens(700, batch=2, seed=3)
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[1, 500:] = False
    with torch.inference_mode():
        full = model(tokens, mask).stages
        alone, _ = model.boundaries(tokens, mask)
    assert len(alone) == len(full) == model.config.num_stages
    for a, f in zip(alone, full):
        assert torch.equal(a.boundary_mask, f.boundary_mask)
        torch.testing.assert_close(a.boundary_prob, f.boundary_prob, rtol=0, atol=0)
        assert a.compression == f.compression
    assert 0 < full[0].boundary_mask[0, :500].float().mean() < 1  # real, varied boundaries


def test_a_mamba_layer_in_cpu_blocks_equals_one_pass():
    """Long inputs run in cache-sized blocks on a CPU: same outputs, states and gradients."""
    from dataclasses import replace

    from dnahnet_core.model.blocks import MambaLayer

    ssm = replace(load_config("dnahnet-tiny").ssm, chunk_size=8)
    torch.manual_seed(0)
    layer = MambaLayer(16, ssm)
    assert layer.block_length % ssm.chunk_size == 0
    x = torch.randn(2, 75, 16, requires_grad=True)
    valid = torch.ones(2, 75, dtype=torch.bool)
    valid[1, 50:] = False  # padding at the right end, across block boundaries

    def run(block_length):
        layer.block_length = block_length
        out, state = layer(x, valid, return_state=True)
        grads = torch.autograd.grad(out[valid].square().sum(), [x, *layer.parameters()])
        return out, state, grads

    one_pass, blocks = run(10**9), run(16)
    torch.testing.assert_close(blocks[0][valid], one_pass[0][valid], rtol=1e-5, atol=1e-6)
    for got, want in zip([*blocks[1], *blocks[2]], [*one_pass[1], *one_pass[2]]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    layer.block_length = 16
    assert layer(x, valid)[1] is None  # no state unless asked for


@pytest.mark.parametrize("length", [16, 50, 100])
@pytest.mark.parametrize("block", [None, 4, 16])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_sliding_window_attention_equals_dense_reference(length, block, layout, monkeypatch):
    from dnahnet_core.model import attention
    from dnahnet_core.model.attention import attention_reference, sliding_window_attention

    if layout == "transposed":  # as CUDA's flash and memory-efficient kernels return it
        sdpa = attention.F.scaled_dot_product_attention
        monkeypatch.setattr(attention.F, "scaled_dot_product_attention", lambda *a, **k: (
            sdpa(*a, **k).transpose(1, 2).contiguous().transpose(1, 2)))
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, length, 8) for _ in range(3))
    pos = torch.arange(length)[None].expand(2, -1)
    valid = torch.ones(2, length, dtype=torch.bool)
    got = sliding_window_attention(q, k, v, window=16, block=block, blocks_per_call=2)
    torch.testing.assert_close(
        got, attention_reference(q, pos, k, v, pos, valid, 16), rtol=1e-5, atol=1e-5
    )


def test_masked_attention_with_cache_equals_dense_reference():
    from dnahnet_core.model.attention import attention_reference, masked_attention

    torch.manual_seed(1)
    cached, t, window = 7, 40, 12
    q = torch.randn(2, 2, t, 8)
    keys, values = torch.randn(2, 2, cached + t, 8), torch.randn(2, 2, cached + t, 8)
    # element 1's cache has a padded slot in the middle and lags 3 positions behind
    key_pos = torch.stack([torch.arange(cached + t), torch.arange(cached + t) - 3])
    key_valid = torch.ones(2, cached + t, dtype=torch.bool)
    key_valid[1, 4] = False
    q_pos = key_pos[:, cached:]
    got = masked_attention(q, q_pos, keys, values, key_pos, key_valid, window, cached)
    want = attention_reference(q, q_pos, keys, values, key_pos, key_valid, window)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_attention_layer_uses_the_band_of_the_window():
    torch.manual_seed(0)
    attn = Attention(32, 4, window=16, rope_base=10000.0)
    x = torch.randn(1, 60, 32)
    with torch.no_grad():
        base, _ = attn(x, torch.ones(1, 60, dtype=torch.bool))
        x2 = x.clone()
        x2[:, 10] += 1.0  # position 10 is outside the window of positions >= 26
        moved, _ = attn(x2, torch.ones(1, 60, dtype=torch.bool))
    assert not torch.allclose(base[:, 10:26], moved[:, 10:26])
    torch.testing.assert_close(base[:, 26:], moved[:, 26:], rtol=0, atol=0)
    torch.testing.assert_close(base[:, :10], moved[:, :10], rtol=0, atol=0)


def test_baselines_match_dnahnet_small_parameter_count():
    def count(name):
        return sum(p.numel() for p in build_model(load_config(name)).parameters())

    reference = count("dnahnet-small")
    assert 1e6 < reference < 10e6
    for name in ("transformer-small", "mamba2-small"):
        assert abs(count(name) - reference) / reference < 0.10, name


def test_param_groups_cover_all_parameters_with_stage_multipliers():
    model = build_model(load_config("dnahnet-tiny"))
    groups = model.param_groups(lr=1e-3, weight_decay=0.1)
    seen = [p for g in groups for p in g["params"]]
    assert len(seen) == len(list(model.parameters()))
    assert {g["level"] for g in groups} == {0, 1, 2}
    for g in groups:
        assert g["lr"] == pytest.approx(1e-3 * model.config.lr_multipliers[g["level"]])
        if g["weight_decay"]:
            assert all(p.ndim >= 2 for p in g["params"])
    inner_main = model.backbone.inner.inner.layers[0].mlp.fc1.weight
    assert any(inner_main is p for g in groups if g["level"] == 2 for p in g["params"])


def test_save_and_load_round_trip(tmp_path):
    model = build_model(load_config("dnahnet-tiny"), seed=3).eval()
    save_model(model, tmp_path / "m", metadata={"note": "test"})
    assert (tmp_path / "m" / "model.safetensors").exists()
    loaded = load_model(tmp_path / "m")
    x = _tokens(64)
    torch.testing.assert_close(model.log_probs(x), loaded.log_probs(x))


def test_load_model_errors_are_clear(tmp_path):
    with pytest.raises(DnahnetError, match="not a model directory"):
        load_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DnahnetError, match="no model.safetensors"):
        load_model(tmp_path / "empty")
    with pytest.raises(DnahnetError, match="unknown model config"):
        load_config("dnahnet-huge")


def test_log_probs_are_normalised_per_position():
    model = build_model(load_config("dnahnet-tiny")).eval()
    x = _tokens(40)
    with torch.no_grad():
        logits = model(x).logits
    total = torch.logsumexp(F.log_softmax(logits, -1), dim=-1)
    torch.testing.assert_close(total, torch.zeros_like(total), atol=1e-5, rtol=0)
    lp = model.log_probs(x)
    assert lp.shape == (2, 40) and (lp <= 0).all()
    assert math.isfinite(lp.sum().item())


@pytest.mark.parametrize("preset", ["dnahnet-1stage", "dnahnet-tiny"])
def test_a_forward_waits_for_the_device_only_to_size_each_stage(preset):
    """On a GPU every .item() drains the queue before the host can launch more: the H100's
    forwards of up to 32 kb waited on the host (docs/benchmarks.md). Only the chunk
    count of each stage needs the host (it sizes the inner sequence); the compression
    statistics stay on the device (they took four more syncs a forward)."""
    from tests.test_graphs import _CaptureBreakers  # host reads, and tensors from host data

    model = build_model(load_config(preset), seed=0)
    tokens = torch.randint(0, 4, (2, 600), generator=torch.Generator().manual_seed(0))
    with _CaptureBreakers() as syncs:
        out = model(tokens)
        (out.logits.sum() + out.ratio_loss).backward()
    assert len(syncs.seen) == model.config.num_stages
    assert all(s.compression.device == tokens.device and s.compression > 1 for s in out.stages)
