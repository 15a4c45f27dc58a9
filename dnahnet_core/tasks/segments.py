"""Learned chunk boundaries of whole genomes (``dnahnet segments``).

Plan: the genome's contigs, in byte order of their names (the order genome-browser
tools require). Engine: ``engine.stitched_predictions_each`` over tiles of ``context +
stride`` nucleotides (``windows.plan_tiles``; stride ``DEFAULT_STRIDE``): every base is
predicted with at least ``context`` nucleotides of left context. A tile runs the encoders
and routers only, in pieces with their state carried; the tiles of all contigs are one
stream of tasks for ``--workers``. Results: ``ContigSegments``, the per-base
boundary probability and mask of each stage. Writers: ``io.tracks`` (BED6 chunks,
bedGraph probabilities), ``io.bigwig`` (bigWig probabilities).

Boundaries per stage come from the model in nucleotide coordinates (stage 2
composed through stage 1). A chunk starts at every boundary and ends just before
the next one; position 0 of each contig always starts a chunk in every stage.
Memory: one piece of a batch of tiles on the device, plus per contig its tokens and one
float32 + one bool per base and stage.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dnahnet_core.alphabet import encode
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io import tracks
from dnahnet_core.io.atomic import atomic_open, check_outputs
from dnahnet_core.io.bigwig import (
    bigwig_paths,
    boundary_track,
    check_prefix,
    chrom_sizes,
    open_bigwig,
)
from dnahnet_core.io.fasta import load_genome
from dnahnet_core.model_source import ModelSource, ready_model
from dnahnet_core.progress import counter
from dnahnet_core.tasks.engine import (
    ModelWorkers,
    check_scoring_options,
    default_batch_size,
    stitched_predictions_each,
)

# New bases per tile: each tile runs as one pass (in pieces with the encoders' state
# carried), so a long stride computes each base about once instead of twice; every base
# still has >= context nt of left context (docs/segments.md has the measured agreement
# with stride = context).
DEFAULT_STRIDE = 262_144


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


def segment_contig(model, name: str, sequence: str | np.ndarray, **options) -> ContigSegments:
    """Boundaries of one contig (see ``segment_genome``)."""
    (segments,) = segment_genome(model, {name: sequence}, **options)
    return segments


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
    genome: dict[str, str | np.ndarray],
    *,
    stages: Sequence[int] | None = None,
    context: int = 8192,
    stride: int | None = None,
    batch_size: int = 8,
    device: torch.device | str = "auto",
    precision: str = "fp32",
    workers: int | ModelWorkers = 1,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[ContigSegments]:
    """Boundaries of every non-empty contig, stitched from overlapping windows (see module
    doc), in byte order of the names (the order genome-browser tools require); empty
    records have no chunks. ``stride`` None: ``DEFAULT_STRIDE``.

    ``model`` is a DnaLM (anything ``engine.forward_windows`` accepts); ``stages``
    selects stage numbers (1-based), None keeps all of them.
    """
    chosen = _choose_stages(model.config.num_stages, stages)
    names = [n for n in sorted(genome, key=tracks.contig_sort_key) if len(genome[n])]
    sequences = [
        encode(genome[n], where=n) if isinstance(genome[n], str) else np.asarray(genome[n])
        for n in names
    ]
    every = stitched_predictions_each(
        model, sequences, context=context, stride=stride or DEFAULT_STRIDE,
        batch_size=batch_size, device=device, precision=precision, workers=workers,
        on_progress=on_progress, boundaries_only=True, depth=max(chosen),
    )
    rows = [stage - 1 for stage in chosen]
    for name, predictions in zip(names, every, strict=True):
        prob = predictions.boundary_prob[rows]
        mask = predictions.boundary_mask[rows]
        mask[:, :1] = True
        yield ContigSegments(name, chosen, prob, mask)


def write_segments(
    genome: str | os.PathLike,
    output: str | os.PathLike | None,
    model: ModelSource | torch.nn.Module,
    *,
    stages: Sequence[int] | None = None,
    bedgraph: str | os.PathLike | None = None,
    bigwig: str | os.PathLike | None = None,
    context: int = 8192,
    stride: int | None = None,
    batch_size: int | None = None,
    device="auto",
    precision: str = "fp32",
    workers: int = 1,
    track: bool = False,
) -> None:
    """``dnahnet segments``: BED6 chunks (stdout when no output), optional bedGraphs and
    bigWigs.

    Nothing is written before the genome is read and validated; with several stages
    ``X.bedgraph`` becomes ``X.stage1.bedgraph``, ``X.stage2.bedgraph`` (``io.tracks``);
    ``bigwig`` (a prefix P) gives ``P.stage1.boundary_prob.bw`` per stage (``io.bigwig``).
    """
    if context < 0:
        raise DnahnetError(f"--context {context}: must be >= 0")
    if stride is not None and stride < 1:
        raise DnahnetError(f"--stride {stride}: must be >= 1")
    if batch_size is not None and batch_size < 1:
        raise DnahnetError(f"--batch-size {batch_size}: must be >= 1")
    check_scoring_options(device, precision=precision, workers=workers)
    if bigwig is not None:
        check_prefix(bigwig)
    sequences = load_genome(genome)  # validates every record before any output
    network, device = ready_model(model, device)
    stages = _choose_stages(network.config.num_stages, stages)
    paths = tracks.bedgraph_paths(Path(bedgraph), stages) if bedgraph else {}
    bigwig_files = bigwig_paths(bigwig, stages, logprob=False) if bigwig is not None else {}
    check_outputs({"--output": output,
                   **{f"--bedgraph (stage {s})": p for s, p in paths.items()},
                   **{f"--bigwig ({name})": p for name, p in bigwig_files.items()}})
    batch_size = batch_size or default_batch_size(device)
    total = sum(len(s) for s in sequences.values())
    with contextlib.ExitStack() as stack:
        advance = stack.enter_context(counter("nt", "segments", total))
        pool = stack.enter_context(ModelWorkers(network, workers))
        bed = graphs = None
        for contig in segment_genome(
            network, sequences, stages=stages, context=context, stride=stride,
            batch_size=batch_size, device=device, precision=precision, workers=pool,
            on_progress=advance,
        ):
            if bed is None:  # nothing is written before the first contig is computed
                bed = stack.enter_context(atomic_open(output, "w")) if output else sys.stdout
                graphs = {s: stack.enter_context(atomic_open(p, "w")) for s, p in paths.items()}
                bigwigs = _open_bigwigs(stack, bigwig_files, contig.stages, sequences,
                                        genome)
                if track:
                    tracks.write_segment_track_lines(bed, graphs, contig.stages)
            bed.writelines(tracks.iter_segments_bed(contig))
            bed.flush()
            for row, s in enumerate(contig.stages):
                if s in graphs:
                    graphs[s].writelines(tracks.iter_bedgraph(contig.name, contig.prob[row]))
                if s in bigwigs:
                    bigwigs[s].add(contig.name, contig.prob[row])


def _open_bigwigs(stack, paths: dict, stages: list[int], sequences: dict[str, str],
                  genome) -> dict:
    """Stage -> open bigWig of its boundary probability (contigs in ``segment_genome``
    order); ``paths``: track name -> file (``bigwig_paths``), none without --bigwig."""
    if not paths:
        return {}
    names = sorted(sequences, key=tracks.contig_sort_key)
    sizes = chrom_sizes({n: len(sequences[n]) for n in names}, str(genome))
    return {s: stack.enter_context(open_bigwig(paths[boundary_track(s)], sizes)) for s in stages}

