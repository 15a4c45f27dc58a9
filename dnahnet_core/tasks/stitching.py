"""Per-position predictions of sequences of any length, stitched from overlapping windows.

`plan_windows` tiles a sequence: every kept position has at least `context`
nucleotides of left context inside its window (or the whole sequence to its left).
Memory is one batch of windows plus a few numbers per position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dnahnet_core.tasks.engine import forward_windows


@dataclass(frozen=True)
class Window:
    """A model window [start, end) whose predictions are kept on [keep_start, keep_end)."""

    start: int
    end: int
    keep_start: int
    keep_end: int


def plan_windows(length: int, context: int, stride: int) -> list[Window]:
    """Tile a contig of ``length`` nt; every kept base has >= ``context`` nt of left
    context inside its window, or all of the contig to its left where that is shorter."""
    if context < 0 or stride < 1:
        raise ValueError("context must be >= 0 and stride >= 1")
    width = context + stride
    if length <= width:
        return [Window(0, length, 0, length)]
    windows = [Window(0, width, 0, width)]
    keep = width
    while keep < length:
        keep_end = min(keep + stride, length)
        windows.append(Window(keep_end - width, keep_end, keep, keep_end))
        keep = keep_end
    return windows


@dataclass
class Predictions:
    log_probs: np.ndarray  # [L] float32, log P(x_t | x_<t)
    boundary_prob: np.ndarray  # [stages, L] float32
    boundary_mask: np.ndarray  # [stages, L] bool


def stitched_predictions(
    model,
    tokens: np.ndarray,
    *,
    context: int = 8192,
    stride: int | None = None,
    batch_size: int = 8,
    device="cpu",
    on_progress: Callable[[int], None] | None = None,
) -> Predictions:
    length = int(tokens.shape[0])
    windows = plan_windows(length, context, stride or context) if length else []
    stages = model.config.num_stages
    result = Predictions(
        np.zeros(length, dtype=np.float32),
        np.zeros((stages, length), dtype=np.float32),
        np.zeros((stages, length), dtype=bool),
    )
    views = [tokens[w.start : w.end] for w in windows]
    for w, out in zip(windows, forward_windows(model, views, device, batch_size), strict=True):
        keep = slice(w.keep_start - w.start, w.keep_end - w.start)
        result.log_probs[w.keep_start : w.keep_end] = out.log_probs[keep]
        for s in range(stages):
            result.boundary_prob[s, w.keep_start : w.keep_end] = out.boundary_prob[s][keep]
            result.boundary_mask[s, w.keep_start : w.keep_end] = out.boundary_mask[s][keep]
        if on_progress is not None:
            on_progress(w.keep_end - w.keep_start)
    return result
