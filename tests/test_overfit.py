"""A tiny dnaHNet learns a real genome fragment: training works end to end on a CPU."""

import math

import torch
import torch.nn.functional as F

from dnahnet_core.alphabet import encode
from dnahnet_core.model import build_model, load_config


def test_tiny_model_overfits_real_fragment_below_two_bits(mycoplasma_contig):
    torch.manual_seed(0)
    fragment = torch.from_numpy(encode(mycoplasma_contig[10_000:10_512]).astype("int64"))[None]
    model = build_model(load_config("dnahnet-tiny"), seed=0)
    optimizer = torch.optim.AdamW(model.param_groups(lr=3e-3, weight_decay=0.0))
    bits = []
    for _ in range(200):
        out = model(fragment)
        nll = F.cross_entropy(out.logits.reshape(-1, 5), fragment.reshape(-1))
        loss = nll + 0.03 * out.ratio_loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        bits.append(nll.item() / math.log(2))
    assert bits[0] > 2.0  # untrained: about log2(5) bits
    assert min(bits[-10:]) < 1.5, bits[-10:]
