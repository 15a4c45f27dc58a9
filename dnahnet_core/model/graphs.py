"""Inference forwards replayed from CUDA graphs: one launch per forward instead of the
1,300-2,000 ops the host issues one by one (docs/gpu.md, "CUDA graphs").

A dnaHNet forward sizes each stage's inner sequence by its largest chunk count, which the
host reads from the GPU: a sync a stage, and shapes that change with the input. Here
every stage gets a fixed width instead (``DnaLM.forward``'s ``chunk_widths``): a bucket
above the counts seen so far, so that a forward of a given input shape has static shapes
and no sync, is captured once and replayed. A replay whose chunks did not fit its widths
is noticed afterwards (one sync, where the caller reads the outputs anyway), run again
eagerly, and the shape captured again with wider buckets.

    forward = GraphedForward(model, precision="bf16")   # the model on a CUDA device
    out = forward(tokens, mask)   # LMOutput: logits and stages, as model(tokens, mask)

Outputs are the model's own up to rounding: the inner sequences are longer (padded with
invalid chunks, which a causal network never lets reach a valid one), so kernels may
sum in another order. Forward only, fresh sequences only (no ``state``).
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from dnahnet_core.model.lm import DnaLM, LMOutput

WIDTH_STEP = 64  # widths are multiples of this (the SSD scan's chunk length)
WARMUP_PASSES = 2  # before a capture: compile and autotune the kernels, set up cuBLAS


@dataclass
class _Graph:
    tokens: torch.Tensor  # the static input buffers a replay reads
    mask: torch.Tensor | None
    output: LMOutput  # the static output tensors a replay writes
    overflow: torch.Tensor  # 0-d bool: some row has more chunks than its stage's width
    widths: tuple[int, ...]
    replay: Callable[[], None]


def capture_autocast(device: torch.device, precision: str):
    """The forward's precision for a capture: bf16 autocast without its cache of cast
    weights, which a capture cannot keep (fp32: autocast off)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16",
                          cache_enabled=False)


def make_room(graphs: OrderedDict, max_graphs: int) -> None:
    """Drop the least recently used graphs until another fits within ``max_graphs``."""
    while len(graphs) >= max_graphs:
        graphs.popitem(last=False)


def cuda_capture(run: Callable[[], tuple], pool) -> tuple[tuple, Callable[[], None]]:
    """Capture ``run()`` in a CUDA graph: (its output tensors, the graph's replay)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(WARMUP_PASSES):
            run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        output = run()
    return output, graph.replay


def eager_capture(run: Callable[[], tuple], pool) -> tuple[tuple, Callable[[], None]]:
    """What ``cuda_capture`` does, on any device: a replay runs ``run()`` again and writes
    its results into the first run's tensors (a graph's static outputs). For tests."""
    output = run()

    def replay() -> None:
        for static, fresh in zip(_tensors(output), _tensors(run()), strict=True):
            static.copy_(fresh)

    return output, replay


def _tensors(tree) -> list[torch.Tensor]:
    """The tensors of an output tree (tuples, lists, dataclasses), in a fixed order."""
    if isinstance(tree, torch.Tensor):
        return [tree]
    if dataclasses.is_dataclass(tree):
        tree = [getattr(tree, f.name) for f in dataclasses.fields(tree)]
    if isinstance(tree, (list, tuple)):
        return [t for item in tree for t in _tensors(item)]
    return []


def rebuilt(template, tensors: Iterator[torch.Tensor]):
    """``template`` (an output tree) with each of its tensors, in ``_tensors``' order,
    replaced by the next of ``tensors``; everything else kept."""
    if isinstance(template, torch.Tensor):
        return next(tensors)
    if dataclasses.is_dataclass(template):
        return dataclasses.replace(template, **{
            f.name: rebuilt(getattr(template, f.name), tensors)
            for f in dataclasses.fields(template)})
    if isinstance(template, (list, tuple)):
        return type(template)(rebuilt(item, tensors) for item in template)
    return template


def _copied(output: LMOutput) -> LMOutput:
    """The output with every tensor copied out of the graph's buffers (the next replay
    overwrites them)."""
    return rebuilt(output, (t.clone() for t in _tensors(output)))


def overflowed(output: LMOutput, limits: torch.Tensor) -> torch.Tensor:
    """0-d bool, on the device: some row has more chunks than its stage's width."""
    if not output.stages:
        return torch.zeros((), dtype=torch.bool, device=output.logits.device)
    return (torch.stack([s.chunk_count.max() for s in output.stages]) > limits).any()


class FixedWidthForward(nn.Module):
    """``model(tokens, mask, chunk_widths=widths)`` as tensors only: (logits, ratio loss,
    overflow, then the stages' statistics, detached, in ``_tensors``' order: ``rebuilt``
    puts them back into StageStats), the form ``torch.cuda.make_graphed_callables``
    captures with its backward (``dnahnet train --cuda-graphs``). Gradients are those of
    the counted widths while nothing overflows (tested)."""

    def __init__(self, model: DnaLM, widths: tuple[int, ...]):
        super().__init__()
        self.model, self.widths = model, tuple(widths)
        # on the model's device from the start: a copy to it inside a capture would break it
        device = next(model.parameters()).device
        self.register_buffer("limits", torch.tensor(self.widths, device=device),
                             persistent=False)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor):
        out = self.model(tokens, mask, chunk_widths=self.widths)
        stats = [t.detach() for t in _tensors(out.stages)]  # statistics: no gradient
        return (out.logits, out.ratio_loss, overflowed(out, self.limits), *stats)


def widths_for(output: LMOutput, length: int, slack: float,
               at_least: tuple[int, ...] = ()) -> tuple[int, ...]:
    """Each stage's width: its largest chunk count plus ``slack`` of it, rounded up to
    ``WIDTH_STEP``, at most the stage's input length (the last width, or ``length`` + 1
    with the BOS), and never below ``at_least``."""
    widths, limit = [], length + 1
    counts = [int(s.chunk_count.max()) for s in output.stages]
    for i, count in enumerate(counts):
        width = WIDTH_STEP * math.ceil(count * (1 + slack) / WIDTH_STEP)
        width = min(max(width, at_least[i] if i < len(at_least) else 0, 1), limit)
        widths.append(width)
        limit = width
    return tuple(widths)


class GraphedForward:
    """``model(tokens, mask)`` replayed from a CUDA graph per input shape (module docstring).

    ``precision``: "fp32" or "bf16" (autocast, as ``train.precision.autocast``);
    ``slack``: how much wider than the counts seen a stage's width is; ``max_graphs``:
    input shapes kept (the least recently used goes); ``capture``: ``cuda_capture``, or
    ``eager_capture`` to run the same logic anywhere.
    """

    def __init__(self, model: DnaLM, *, precision: str = "fp32", slack: float = 0.125,
                 max_graphs: int = 4, capture=cuda_capture):
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, not {precision!r}")
        self.model = model.eval()
        self.precision, self.slack, self.max_graphs = precision, slack, max_graphs
        self.capture = capture
        device = next(model.parameters()).device
        if capture is cuda_capture and device.type != "cuda":
            raise ValueError(f"CUDA graphs need the model on a CUDA device, not {device}")
        self.device = device
        # one memory pool for all the shapes' graphs: a replay may overwrite another
        # graph's outputs, which are copied out right after their own replay, and the
        # graphs run one at a time on one stream
        self.pool = torch.cuda.graph_pool_handle() if capture is cuda_capture else None
        self.graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self.captures = 0  # how many graphs were captured (a new shape or an overflow)
        self.replays = 0
        self.overflows = 0

    def __call__(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> LMOutput:
        key = (tuple(tokens.shape), tokens.dtype, mask is None)
        graph = self.graphs.get(key)
        if graph is None:
            # before the eager pass: memory is what a long input lacks
            make_room(self.graphs, self.max_graphs)
            output = self._eager(tokens, mask)
            self._capture(key, tokens, mask, widths_for(output, tokens.shape[1], self.slack))
            return output
        self.graphs.move_to_end(key)
        with torch.inference_mode():  # the static inputs were made in it
            graph.tokens.copy_(tokens)
            if mask is not None:
                graph.mask.copy_(mask)
            graph.replay()
        self.replays += 1
        if not bool(graph.overflow):  # the one sync: the caller reads the outputs next
            return _copied(graph.output)
        self.overflows += 1
        output = self._eager(tokens, mask)
        widths = widths_for(output, tokens.shape[1], self.slack, at_least=graph.widths)
        self._capture(key, tokens, mask, widths)
        return output

    def _eager(self, tokens, mask) -> LMOutput:
        with torch.inference_mode(), capture_autocast(self.device, self.precision):
            return self.model(tokens, mask)

    def _capture(self, key, tokens, mask, widths: tuple[int, ...]) -> None:
        self.graphs.pop(key, None)  # memory goes back to the pool before the capture
        make_room(self.graphs, self.max_graphs)
        with torch.inference_mode():
            static_tokens = tokens.clone()
            static_mask = None if mask is None else mask.clone()
            limits = torch.tensor(widths, device=self.device, dtype=torch.long)

        def run():
            out = self.model(static_tokens, static_mask, chunk_widths=widths)
            return out, overflowed(out, limits)

        with torch.inference_mode(), capture_autocast(self.device, self.precision):
            (output, overflow), replay = self.capture(run, self.pool)
        self.graphs[key] = _Graph(static_tokens, static_mask, output, overflow, widths, replay)
        self.captures += 1
