"""``--cuda-graphs``: the training step's forward and backward replayed from CUDA graphs.

On a GPU a training step of a small dnaHNet is mostly the host issuing a few thousand
torch ops and mamba-ssm calls one by one (docs/benchmarks.md, "Why dnaHNet loses at 8-32
kb"). Here the forward with each stage's inner length fixed (``model.graphs``: no host
sync, static shapes) is captured with its backward by ``torch.cuda.make_graphed_callables``
once per batch shape, and every later step replays both.

    net = GraphedTrainingForward(model, precision="bf16")   # the model on a CUDA device
    out = net(tokens, mask)        # LMOutput, as model(tokens, mask); out.logits -> loss
    loss.backward()                # replays the backward graph

- The first step of a shape runs the model once without gradients for its chunk counts,
  which set the widths (``model.graphs.widths_for``), then captures (three warm-up passes
  on a side stream first, where mamba-ssm's kernels compile and autotune).
- A step whose chunks overflow a width is noticed from one flag the graph computes (one
  sync a step, where the loop reads its loss anyway): that step runs eagerly (the right
  gradients) and the next step captures again with wider widths, and twice the slack
  (12.5 % at first), so that counts still growing early in a run cost few captures.
- Every capture is checked before it is used: a replay's logits and gradients against
  the same forward and backward run eagerly (the same widths, so the same kernels). A
  capture that fails or disagrees turns the graphs off for the rest of the run with a
  one-line warning: training goes on eagerly.
- A graph's backward hands autograd its static gradient buffers, which become a
  parameter's ``.grad`` when that is None; a second backward before the optimizer step
  (``--grad-accum``) would then overwrite what the first accumulated. So every gradient
  is kept defined: the loop zeroes gradients instead of setting them to None
  (``keeps_gradients``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dnahnet_core.errors import DnahnetError
from dnahnet_core.model.graphs import (
    FixedWidthForward,
    capture_autocast,
    make_room,
    rebuilt,
    widths_for,
)
from dnahnet_core.model.lm import DnaLM, LMOutput, StageStats
from dnahnet_core.progress import log

# a capture's check: |replay - eager| / |eager| of the logits and of all the gradients
# (the same kernels on the same batch: rounding only, and atomic adds' order)
AGREEMENT = {"fp32": 1e-3, "bf16": 2e-2}


def graphed_for_training(model: DnaLM, world, precision: str) -> GraphedTrainingForward:
    """What ``--cuda-graphs`` makes the training step call (``world``: the run's
    ``distributed.World``)."""
    if world.device.type != "cuda":
        raise DnahnetError(f"--cuda-graphs: CUDA graphs need a CUDA device; this run is on "
                           f"{world.device.type} (leave --cuda-graphs out)")
    if world.distributed:
        raise DnahnetError("--cuda-graphs: one process only for now (DDP's gradient "
                           "all-reduce is not captured); leave --cuda-graphs out")
    return GraphedTrainingForward(model, precision=precision)


def cuda_training_capture(module: torch.nn.Module, sample_args: tuple) -> Callable:
    """``module``'s forward and backward captured in CUDA graphs, warmed up first."""
    return torch.cuda.make_graphed_callables(module, sample_args)


@dataclass
class _Graph:
    run: Callable  # (tokens, mask) -> FixedWidthForward's outputs, backward replayed
    widths: tuple[int, ...]
    slack: float  # how much wider than the counts the widths were made
    stages: list[StageStats]  # the template the statistics are put back into


class GraphedTrainingForward:
    """``model(tokens, mask)`` for training steps, replayed from CUDA graphs (module
    docstring). ``capture``: how a module is captured (None: ``cuda_training_capture``;
    tests pass a stand-in that runs anywhere)."""

    keeps_gradients = True  # the loop zeroes gradients instead of setting them to None

    def __init__(self, model: DnaLM, *, precision: str = "fp32", slack: float = 0.125,
                 max_graphs: int = 2, capture: Callable | None = None):
        self.model, self.precision, self.slack = model, precision, slack
        self.max_graphs = max_graphs
        self.capture = capture or cuda_training_capture
        self.device = next(model.parameters()).device
        if capture is None and self.device.type != "cuda":
            raise ValueError(f"CUDA graphs need the model on a CUDA device, not {self.device}")
        self.graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        # after an overflow: the widths the next capture needs at least, and its slack
        self.wanted: dict[tuple, tuple[tuple[int, ...], float]] = {}
        self.off_because: str | None = None  # why the graphs were turned off, if they were
        self.captures = self.replays = self.overflows = 0

    def __call__(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> LMOutput:
        if mask is None:
            mask = torch.ones_like(tokens, dtype=torch.bool)
        if self.off_because is not None:
            return self.model(tokens, mask)
        key = (tuple(tokens.shape), tokens.dtype, mask.dtype)
        graph = self.graphs.get(key)
        if graph is None:
            graph = self._capture(key, tokens, mask)
            if graph is None:
                return self.model(tokens, mask)
        self.graphs.move_to_end(key)
        self._define_gradients()
        logits, ratio_loss, overflow, *stats = graph.run(tokens, mask)
        self.replays += 1
        if not bool(overflow):  # the step's one sync
            return LMOutput(logits, ratio_loss, rebuilt(graph.stages, iter(stats)))
        self.overflows += 1
        output = self.model(tokens, mask)  # this step eagerly: its chunks did not fit
        # chunk counts still moving (early in a run): each overflow doubles the slack
        slack = min(2 * graph.slack, 1.0)
        self.wanted[key] = widths_for(output, tokens.shape[1], slack,
                                      at_least=graph.widths), slack
        del self.graphs[key]  # its memory goes back before the next capture
        log(f"CUDA graphs: a batch had more chunks than the widths {graph.widths}; that "
            f"step ran without graphs, the next one captures widths {self.wanted[key][0]}")
        return output

    def _capture(self, key: tuple, tokens: torch.Tensor, mask: torch.Tensor) -> _Graph | None:
        make_room(self.graphs, self.max_graphs)
        try:
            with torch.no_grad(), capture_autocast(self.device, self.precision):
                counted = self.model(tokens, mask)  # its chunk counts size the widths
            at_least, slack = self.wanted.pop(key, ((), self.slack))
            widths = widths_for(counted, tokens.shape[1], slack, at_least=at_least)
            with capture_autocast(self.device, self.precision):
                # a capture replaces its module's forward: the eager one is another module
                run = self.capture(FixedWidthForward(self.model, widths), (tokens, mask))
                differences = self._replay_against_eager(
                    run, FixedWidthForward(self.model, widths), tokens, mask)
        except Exception as error:  # noqa: BLE001 - any failure: train on without graphs
            first_line = (str(error).splitlines() or [""])[0]
            self._turn_off(f"capturing a step of {tuple(tokens.shape)} failed: "
                           f"{type(error).__name__}: {first_line}")
            return None
        if max(differences) > AGREEMENT[self.precision]:
            self._turn_off("a replay differs from the same step run eagerly: logits by "
                           f"{differences[0]:.1e}, gradients by {differences[1]:.1e} (relative)")
            return None
        graph = _Graph(run, widths, slack, counted.stages)
        self.graphs[key] = graph
        self.captures += 1
        log(f"CUDA graphs: captured the training step for batches of "
            f"{tokens.shape[0]} x {tokens.shape[1]:,} nt (chunk widths {widths})")
        return graph

    def _replay_against_eager(self, run: Callable, fixed: FixedWidthForward,
                              tokens: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
        """The relative differences of the logits and of all the gradients between a
        replay and the same forward and backward run eagerly."""
        params = [p for p in self.model.parameters() if p.requires_grad]

        def logits_and_gradients(forward):
            logits, ratio_loss, *_ = forward(tokens, mask)
            probe = logits.float().square().mean() + ratio_loss  # what a loss reads
            grads = torch.autograd.grad(probe, params, allow_unused=True)
            flat = torch.cat([(torch.zeros_like(p) if g is None else g).flatten().float()
                              for p, g in zip(params, grads, strict=True)])
            return logits.detach().float(), flat

        want = logits_and_gradients(fixed)
        got = logits_and_gradients(run)
        return tuple(((g - w).norm() / w.norm().clamp(min=1e-12)).item()
                     for g, w in zip(got, want, strict=True))

    def _turn_off(self, why: str) -> None:
        self.off_because = why
        self.graphs.clear()
        log(f"warning: CUDA graphs turned off, training goes on without them: {why}")

    def _define_gradients(self) -> None:
        for p in self.model.parameters():
            if p.requires_grad and p.grad is None:
                p.grad = torch.zeros_like(p)
