"""Parameter counts per component and analytic forward FLOPs per nucleotide.

FLOPs count multiply-adds as 2. Per layer and token: every matmul weight (2 x weights),
attention scores and weighted sums (4 x d x keys per query: the window, or the causal
average for global attention), and the SSD scan (2Q(N+P) per head inside a chunk of Q,
plus 4PN for the chunk states). A level that sees 1/R of the tokens costs 1/R per
nucleotide; by default R is the product of the target ratios outside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from dnahnet_core.model.blocks import AttentionLayer, Isotropic, MambaLayer
from dnahnet_core.model.hnet import HNetStage, walk_levels
from dnahnet_core.model.lm import DnaLM


@dataclass
class Component:
    name: str
    level: int
    params: int


def _count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def components(model: DnaLM) -> list[Component]:
    """Embedding, every stage's encoder / routing / residual / decoder, main network, head."""
    found = [Component("embedding", 0, _count(model.embedding))]
    tail = []
    for level, node in walk_levels(model.backbone):
        if not isinstance(node, HNetStage):
            found.append(Component(f"main network ({node.layout})", level, _count(node)))
            continue
        stage = f"stage {level + 1}"
        routing = _count(node.router) + (
            node.pad_dimension.numel() if node.pad_dimension is not None else 0
        )
        found += [
            Component(f"{stage} encoder ({node.encoder.layout})", level, _count(node.encoder)),
            Component(f"{stage} routing + dim pad", level, routing),
            Component(f"{stage} residual", level, _count(node.residual_proj)),
        ]
        tail.insert(0, Component(f"{stage} decoder ({node.decoder.layout})", level,
                                 _count(node.decoder)))
    return found + tail + [Component("head", 0, _count(model.head))]


def _mean_keys(length: float, window: int | None) -> float:
    """Average number of keys a causal query sees over a sequence of `length`."""
    n = max(length, 1.0)
    if window is None or window >= n:
        return (n + 1) / 2
    return window - (window * (window - 1) / 2) / n


def _layer_flops(layer: nn.Module, length: float) -> float:
    weights = sum(p.numel() for name, p in layer.named_parameters() if p.ndim == 2)
    flops = 2.0 * weights
    if isinstance(layer, AttentionLayer):
        d = layer.mixer.num_heads * layer.mixer.head_dim
        flops += 4.0 * d * _mean_keys(length, layer.mixer.window)
    elif isinstance(layer, MambaLayer):
        m = layer.mixer
        q = min(m.chunk_size, max(int(length), 1))
        flops += m.nheads * (2.0 * q * (m.d_state + m.headdim) + 4.0 * m.headdim * m.d_state)
        flops += 2.0 * m.conv_dim * m.d_conv
    return flops


def _stack_flops(stack: Isotropic, length: float) -> float:
    return sum(_layer_flops(layer, length) for layer in stack.layers)


def flops_per_nucleotide(model: DnaLM, length: int, ratios: list[float] | None = None) -> dict:
    """Forward FLOPs per nucleotide at sequence `length`, split by level, plus 'total'."""
    ratios = list(ratios or model.config.target_ratios)
    per_level: dict[int, float] = {}
    fraction = 1.0
    for level, node in walk_levels(model.backbone):
        n = length * fraction
        if isinstance(node, HNetStage):
            own = _stack_flops(node.encoder, n) + _stack_flops(node.decoder, n)
            own += 2.0 * (_count(node.router) + _count(node.residual_proj))
        else:
            own = _stack_flops(node, n)
        per_level[level] = fraction * own
        if isinstance(node, HNetStage):
            fraction /= ratios[level]
    per_level[0] += 2.0 * _count(model.head)
    return {"levels": per_level, "total": sum(per_level.values())}
