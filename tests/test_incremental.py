"""Incremental inference: caches give exactly the log-probabilities of the full forward pass."""

import pytest
import torch

from dnahnet_core.model import build_model, load_config


def _model(preset, window=24):
    cfg = load_config(preset)
    cfg.attn_window = window  # short window so the caches are trimmed during the test
    return build_model(cfg, seed=2).eval()


def _tokens(length, batch=2, seed=5):
    return torch.randint(0, 4, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "preset", ["dnahnet-tiny", "dnahnet-1stage", "transformer-small", "mamba2-small"]
)
def test_step_by_step_equals_full_forward(preset):
    model = _model(preset)
    x = _tokens(70)
    with torch.no_grad():
        full = model(x).logits
        out = model(x[:, :0], return_state=True)  # only BOS
        steps = []
        state = out.state
        for t in range(x.shape[1]):
            steps.append(state.next_logits)
            state = model(x[:, t : t + 1], state=state, return_state=True).state
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=0, atol=1e-4)


@pytest.mark.parametrize("split", [1, 33, 69])
def test_prefix_state_then_block_equals_full_forward(split):
    model = _model("dnahnet-tiny")
    x = _tokens(70)
    with torch.no_grad():
        full = model(x)
        first = model(x[:, :split], return_state=True)
        second = model(x[:, split:], state=first.state)
    torch.testing.assert_close(
        torch.cat([first.logits, second.logits], 1), full.logits, rtol=0, atol=1e-4
    )
    for s_full, s_a, s_b in zip(full.stages, first.stages, second.stages):
        joined = torch.cat([s_a.boundary_mask, s_b.boundary_mask], 1)
        assert torch.equal(joined, s_full.boundary_mask)


def test_shared_prefix_expands_to_several_continuations():
    model = _model("dnahnet-tiny")
    prefix = _tokens(40, batch=1)
    suffixes = _tokens(25, batch=3, seed=9)
    with torch.no_grad():
        state = model(prefix, return_state=True).state.expand(3)
        continued = model(suffixes, state=state).logits
        full = model(torch.cat([prefix.expand(3, -1), suffixes], 1)).logits[:, 40:]
    torch.testing.assert_close(continued, full, rtol=0, atol=1e-4)
