"""Learned chunk boundaries of whole genomes: tiling, stitching and chunk composition.

A contig longer than one window is tiled with overlapping windows of
``context + stride`` nucleotides. The first window starts at 0 and keeps all its
positions; every later window keeps only its last positions, each of which is
preceded by at least ``context`` nucleotides inside the window. All windows of a
long contig have the same length (the last one is shifted left to fill up), so they
batch without padding. A contig no longer than one window is a single pass.

Boundaries per stage come from the model in nucleotide coordinates (stage 2
composed through stage 1). A chunk starts at every boundary and ends just before
the next one; position 0 of each contig always starts a chunk in every stage.
Memory: one batch of windows on the device, plus per contig its tokens and one
float32 + one bool per base and stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dnahnet_core.alphabet import encode
from dnahnet_core.errors import DnahnetError
from dnahnet_core.tasks.stitching import Window, plan_windows, stitched_predictions

__all__ = ["Window", "plan_windows"]  # re-exported: the tiling is part of this module's story


@dataclass
class ContigSegments:
    """Stitched per-base boundary probability and mask of one contig, per stage."""

    name: str
    stages: list[int]  # stage numbers, 1 = outer (nucleotide-level chunks)
    prob: np.ndarray  # [n_stages, length] float32
    mask: np.ndarray  # [n_stages, length] bool; mask[:, 0] is always True

    @property
    def length(self) -> int:
        return int(self.prob.shape[1])

    def chunks(self, stage: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        row = self.stages.index(stage)
        return chunk_intervals(self.mask[row], self.prob[row])


def chunk_intervals(mask: np.ndarray, prob: np.ndarray):
    """Chunks of one stage: (starts, ends, scores), half-open, tiling [0, len(mask)).

    A chunk starts at each boundary (and at position 0); its score is the boundary
    probability of its first base x 1000, as an integer in 0..1000.
    """
    length = mask.shape[0]
    if length == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    starts = np.flatnonzero(mask)
    if starts.size == 0 or starts[0] != 0:
        starts = np.concatenate(([0], starts))
    ends = np.concatenate((starts[1:], [length]))
    scores = np.clip(np.rint(prob[starts].astype(np.float64) * 1000), 0, 1000).astype(np.int64)
    return starts.astype(np.int64), ends.astype(np.int64), scores




def segment_contig(
    model,
    name: str,
    sequence: str | np.ndarray,
    *,
    stages: Sequence[int] | None = None,
    context: int = 8192,
    stride: int | None = None,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    on_progress: Callable[[int], None] | None = None,
) -> ContigSegments:
    """Boundaries of one contig, stitched from overlapping windows (see module doc).

    ``model`` is a DnaLM (anything ``engine.forward_windows`` accepts); ``stages``
    selects stage numbers (1-based), None keeps all of them.
    """
    tokens = encode(sequence, where=name) if isinstance(sequence, str) else np.asarray(sequence)
    chosen = _choose_stages(model.config.num_stages, stages)
    predictions = stitched_predictions(
        model, tokens, context=context, stride=stride, batch_size=batch_size, device=device,
        on_progress=on_progress,
    )
    rows = [stage - 1 for stage in chosen]
    prob = predictions.boundary_prob[rows]
    mask = predictions.boundary_mask[rows]
    mask[:, :1] = True
    return ContigSegments(name, chosen, prob, mask)


def _choose_stages(available: int, stages: Sequence[int] | None) -> list[int]:
    if available == 0:
        raise DnahnetError("the model has no chunking stages (a baseline?): no segments to report")
    if stages is None:
        return list(range(1, available + 1))
    for stage in stages:
        if not 1 <= stage <= available:
            raise DnahnetError(f"--stage {stage}: the model has {available} stage(s)")
    return list(stages)


def parse_stages(value: str) -> list[int] | None:
    """``--stage`` values: "1", "2", "1,2" or "all" (None = every stage of the model)."""
    text = value.strip().lower()
    if text == "all":
        return None
    try:
        stages = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise DnahnetError(f"--stage {value}: expected 1, 2, a list like 1,2, or all") from None
    if not stages or stages[0] < 1:
        raise DnahnetError(f"--stage {value}: stages are numbered from 1")
    return stages


def segment_genome(
    model,
    genome: dict[str, str],
    **kwargs,
) -> Iterator[ContigSegments]:
    """``segment_contig`` over every non-empty contig, in byte order of the names
    (the order genome-browser tools require); empty records have no chunks."""
    from dnahnet_core.io.tracks import contig_sort_key

    for name in sorted(genome, key=contig_sort_key):
        if genome[name]:
            yield segment_contig(model, name, genome[name], **kwargs)


def bed_lines(segments: ContigSegments) -> str:
    """BED6 text of all chunks of all stages of a contig, sorted by start then stage."""
    return "".join(iter_bed(segments))


def iter_bed(segments: ContigSegments, block: int = 65536) -> Iterator[str]:
    """``bed_lines`` in blocks of at most ``block`` lines (bounded memory)."""
    from dnahnet_core.io.tracks import format_bed6

    starts, ends, scores, stage_of = [], [], [], []
    for stage in segments.stages:
        s, e, c = segments.chunks(stage)
        starts.append(s)
        ends.append(e)
        scores.append(c)
        stage_of.append(np.full(s.size, stage, dtype=np.int64))
    start, end = np.concatenate(starts), np.concatenate(ends)
    score, stage = np.concatenate(scores), np.concatenate(stage_of)
    order = np.lexsort((stage, start))
    for first in range(0, order.size, block):
        rows = order[first : first + block]
        labels = [f"stage{s}" for s in stage[rows].tolist()]
        yield format_bed6(segments.name, start[rows], end[rows], labels, score[rows])
