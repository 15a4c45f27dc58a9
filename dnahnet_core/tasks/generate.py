"""Sampling new nucleotides with the incremental (cached) forward pass."""

from __future__ import annotations

import torch

from dnahnet_core.alphabet import decode, encode
from dnahnet_core.errors import DnahnetError
from dnahnet_core.model_source import ModelSource, ready_model


@torch.no_grad()
def generate(
    model: ModelSource | torch.nn.Module,
    prompt: str,
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    allow_n: bool = False,
    seed: int = 0,
    device="auto",
) -> str:
    """Continue `prompt` by `length` nucleotides, one cached step per nucleotide."""
    if temperature <= 0:
        raise DnahnetError("--temperature must be > 0")
    if not 0 <= top_k <= 5:
        raise DnahnetError("--top-k must be between 0 (off) and 5")
    prompt_tokens = encode(prompt, where="--prompt")
    model, device = ready_model(model, device)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    tokens = torch.from_numpy(prompt_tokens.astype("int64"))[None].to(device)
    state = model(tokens, return_state=True).state
    produced = []
    for _ in range(length):
        logits = state.next_logits[0].double().cpu()
        if not allow_n:
            logits[4] = float("-inf")
        # from the best logit (0) in float64: any finite temperature > 0 gives finite
        # probabilities (a tiny one is greedy), never inf / inf or 0 / 0 = NaN
        logits = (logits - logits.max()) / temperature
        if top_k:
            threshold = torch.topk(logits, top_k).values[-1]
            logits[logits < threshold] = float("-inf")
        token = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
        produced.append(token)
        step = torch.tensor([[token]], device=device)
        state = model(step, state=state, return_state=True).state
    return decode(produced)
