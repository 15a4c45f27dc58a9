"""Embeddings: the hidden states of one level of the hierarchy (``dnahnet embed``).

    for e in embed_sequences(model, [("id", "ACGT...")], stage=1, pool="chunks"):
        e.id, e.starts, e.ends, e.vectors      # one row per stage-1 chunk: [n, d_model[1]]
    for e in embed_regions(model, genome, read_regions("r.bed", genome), pool="mean"):
        e.region, e.vectors                    # [1, d_model[0]]
    write_embeddings("in.fa", "out.npz", model, stage=0, pool="none")   # the command

Layers (``stage``) of a model with S chunking stages (dnahnet-small: S = 2):

- stage 0: the output of the outer encoder (``backbone.encoder``), one vector of width
  d_model[0] per nucleotide; it is what stage 1's router reads. A baseline without
  chunking (the Transformer++ and Mamba2 presets) has only stage 0: its whole stack.
- stage s = 1..S: the output of the first network at level s, one vector of width
  d_model[s] per chunk of stage s: the encoder of the next stage
  (``backbone.inner.encoder`` for s = 1 of a two-stage model) or, at the innermost level,
  the main network (``backbone.inner.inner``). Chunk j of stage s is the j-th interval of
  that stage in ``dnahnet segments`` with the same tiles: the intervals come from the
  same stitched boundaries (``segments.chunk_intervals``'s rule: a chunk starts at every
  boundary and at position 0).

H-Net represents a chunk by the hidden state at its first position, so a chunk's vector
depends on the sequence up to its first nucleotide only (the model is causal). The chunk
holding position 0 of a sequence whose first nucleotide is not a boundary is the chunk
of the model's BOS token: its vector does not depend on the sequence at all.

Pooling (``pool``): "none", one row per nucleotide (at stage s >= 1, the vector of the
stage-s chunk holding it, i.e. the model's upsampling without the dechunk EMA);
"chunks", one row per stage-s chunk (s >= 1) with its interval; "mean", one row per
sequence, the mean of its per-nucleotide rows (chunks weighted by their length; NaN for
an empty sequence). Row intervals are 0-based, half-open, in the sequence as embedded.

Long sequences are tiled as in ``likelihood`` and ``segments`` (``windows.plan_tiles``:
every kept position has at least ``context`` nt of left context; ``engine.forward_windows``
runs the tiles, the hidden states come from forward hooks). Memory: one batch of tiles
on the device, and the rows of one sequence, or at most ``max_rows`` rows when given
(the rows of a long sequence then come in consecutive parts, ``first_row`` telling
where each part starts); the command writes parts of 65,536 rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dnahnet_core import __version__
from dnahnet_core.alphabet import encode, reverse_complement_tokens
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import display_path
from dnahnet_core.io.embeddings import check_output_format, open_embedding_writer
from dnahnet_core.io.fasta import iter_token_records
from dnahnet_core.io.genome import Genome
from dnahnet_core.io.tracks import read_bed
from dnahnet_core.model_source import ModelSource, ready_model
from dnahnet_core.progress import counter
from dnahnet_core.tasks.engine import default_batch_size, forward_windows
from dnahnet_core.tasks.windows import plan_tiles

POOLINGS = ("none", "chunks", "mean")
DTYPES = ("float32", "float16")
WRITE_ROWS = 65536  # rows per part when the command writes a file
COORDINATES = (
    "0-based half-open [start, end) in each sequence as embedded; a region on the - strand "
    "is embedded as its reverse complement, position 0 = its last base on the genome"
)


@dataclass(frozen=True)
class EmbeddingLayer:
    stage: int
    module: str  # the module's name in the model, e.g. "backbone.inner.encoder"
    width: int
    unit: str  # what one vector stands for: "nucleotide" or "stage-s chunk"

    def describe(self) -> str:
        return f"stage {self.stage}: {self.module} (one vector of {self.width} per {self.unit})"


@dataclass(frozen=True)
class Region:
    """A genome interval (0-based, half-open) and the strand it is read on."""

    contig: str
    start: int
    end: int
    strand: str = "."
    name: str = ""

    @property
    def id(self) -> str:
        if self.name and self.name != ".":
            return self.name
        where = f"{self.contig}:{self.start}-{self.end}"
        return where if self.strand == "." else f"{where}({self.strand})"


@dataclass
class SequenceEmbedding:
    """Rows of one sequence: all of them, or one consecutive part (see ``max_rows``)."""

    id: str
    length: int  # nucleotides of the sequence
    starts: np.ndarray  # int64 [n]: the interval of each row
    ends: np.ndarray  # int64 [n]
    vectors: np.ndarray  # [n, width], float32 or float16
    first_row: int = 0  # index of this part's first row among the sequence's rows
    region: Region | None = None


def embedding_layer(model, stage: int) -> tuple[EmbeddingLayer, torch.nn.Module]:
    """The layer ``stage`` names (see the module docstring) and the module to hook."""
    from dnahnet_core.model.hnet import HNetStage

    available = model.config.num_stages
    if not 0 <= stage <= available:
        raise DnahnetError(
            f"--stage {stage}: the model has stages 0 to {available} (0 = the nucleotide level)"
        )
    node, name = model.backbone, "backbone"
    for _ in range(stage):
        node, name = node.inner, f"{name}.inner"
    if isinstance(node, HNetStage):
        node, name = node.encoder, f"{name}.encoder"
    unit = "nucleotide" if stage == 0 else f"stage-{stage} chunk"
    return EmbeddingLayer(stage, name, int(model.config.d_model[stage]), unit), node


def _check_options(pool: str, stage: int, context: int, stride: int | None, dtype: str) -> None:
    if pool not in POOLINGS:
        raise DnahnetError(f"--pool {pool}: expected one of {', '.join(POOLINGS)}")
    if pool == "chunks" and stage == 0:
        raise DnahnetError(
            "--pool chunks needs --stage 1 or deeper (stage 0 is the nucleotide level; its "
            "chunks are stage 1's)"
        )
    if dtype not in DTYPES:
        raise DnahnetError(f"--dtype {dtype}: expected one of {', '.join(DTYPES)}")
    if context < 1:
        raise DnahnetError(f"--context {context}: must be >= 1")
    if stride is not None and stride < 1:
        raise DnahnetError(f"stride {stride}: must be >= 1")


class _Rows:
    """Rows of one sequence, handed out in parts of at most ``max_rows`` (None: one part)."""

    def __init__(self, name, length, width, dtype, max_rows, region):
        self.name, self.length, self.width, self.dtype = name, length, width, dtype
        self.max_rows, self.region = max_rows, region
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.buffered = 0
        self.emitted = 0

    def add(self, starts, ends, vectors) -> Iterator[SequenceEmbedding]:
        if len(starts):
            self.parts.append((starts, ends, vectors.astype(self.dtype)))
            self.buffered += len(starts)
        if self.max_rows is not None and self.buffered >= self.max_rows:
            yield from self.flush()

    def flush(self, final: bool = False) -> Iterator[SequenceEmbedding]:
        if not self.parts and not (final and self.emitted == 0):
            return
        if self.parts:
            starts, ends, vectors = (np.concatenate(a) for a in zip(*self.parts))
        else:  # an empty sequence still appears, with no rows
            starts = ends = np.zeros(0, dtype=np.int64)
            vectors = np.zeros((0, self.width), dtype=self.dtype)
        step = len(starts) if self.max_rows is None else self.max_rows
        for first in range(0, max(len(starts), 1), max(step, 1)):
            part = slice(first, first + step)
            yield SequenceEmbedding(
                self.name, self.length, starts[part], ends[part], vectors[part],
                self.emitted, self.region,
            )
            self.emitted += len(starts[part])
        self.parts, self.buffered = [], 0


def _embed_tokens(
    model,
    layer: EmbeddingLayer,
    module: torch.nn.Module,
    name: str,
    tokens: np.ndarray,
    *,
    pool: str,
    context: int,
    stride: int | None,
    batch_size: int,
    device,
    dtype: str,
    max_rows: int | None,
    region: Region | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[SequenceEmbedding]:
    length = int(tokens.shape[0])
    rows = _Rows(name, length, layer.width, dtype, None if pool == "mean" else max_rows, region)
    total = np.zeros(layer.width, dtype=np.float64)  # pool "mean": sum of per-nucleotide rows
    pending = None  # stage >= 1: (start, vector) of the last chunk, its end not yet known
    tiles = plan_tiles(length, context, stride or context) if length else []
    views = [tokens[t.start : t.end] for t in tiles]
    outputs = forward_windows(model, views, device, batch_size, hidden_of=[module])
    for tile, out in zip(tiles, outputs, strict=True):
        keep = np.arange(tile.keep_start - tile.start, tile.keep_end - tile.start)
        hidden = out.hidden[0]
        if layer.stage == 0:
            per_nucleotide = hidden[1 + keep]  # row 0 is the BOS token
            if pool == "none":
                positions = keep + tile.start
                yield from rows.add(positions, positions + 1, per_nucleotide)
        else:
            boundary = out.boundary_mask[layer.stage - 1]
            element = np.cumsum(boundary)  # nucleotide -> its chunk's row in the level's output
            starts = keep[boundary[keep]]
            if tile.start == 0 and (starts.size == 0 or starts[0] != 0):
                starts = np.concatenate(([0], starts))  # position 0 starts a chunk
            vectors = hidden[element[starts]]
            if pending is not None:  # the chunk begun in an earlier tile
                starts = np.concatenate(([pending[0] - tile.start], starts))
                vectors = np.concatenate((pending[1][None], vectors))
            if pool == "chunks":
                yield from rows.add(
                    starts[:-1] + tile.start, starts[1:] + tile.start, vectors[:-1]
                )
            else:
                owner = np.searchsorted(starts, keep, side="right") - 1
                per_nucleotide = vectors[owner]
                if pool == "none":
                    positions = keep + tile.start
                    yield from rows.add(positions, positions + 1, per_nucleotide)
            pending = (int(starts[-1]) + tile.start, vectors[-1])
        if pool == "mean":
            total += per_nucleotide.sum(axis=0, dtype=np.float64)
        if on_progress is not None:
            on_progress(len(keep))
    if pool == "chunks" and pending is not None:
        yield from rows.add(
            np.array([pending[0]]), np.array([length]), pending[1][None]
        )
    if pool == "mean":
        mean = total / length if length else np.full(layer.width, np.nan)
        yield from rows.add(np.array([0]), np.array([length]), mean[None])
    yield from rows.flush(final=True)


def embed_sequences(
    model: ModelSource | torch.nn.Module,
    records: Iterable[tuple[str, str | np.ndarray]],
    *,
    stage: int = 0,
    pool: str = "none",
    context: int = 8192,
    stride: int | None = None,
    batch_size: int | None = None,
    device="auto",
    dtype: str = "float32",
    max_rows: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[SequenceEmbedding]:
    """Embeddings of (id, sequence) pairs (strings or uint8 tokens), in order; see the
    module docstring for ``stage``, ``pool`` and ``max_rows``. ``batch_size``: windows per
    forward call, by default ``engine.default_batch_size`` (1 on a CPU, 64 on a GPU)."""
    _check_options(pool, stage, context, stride, dtype)
    network, device = ready_model(model, device)
    batch_size = batch_size or default_batch_size(device)
    layer, module = embedding_layer(network, stage)
    for name, sequence in records:
        tokens = encode(sequence, where=f"record {name}") if isinstance(sequence, str) else sequence
        yield from _embed_tokens(
            network, layer, module, name, np.asarray(tokens), pool=pool, context=context,
            stride=stride, batch_size=batch_size, device=device, dtype=dtype,
            max_rows=max_rows, on_progress=on_progress,
        )


def region_tokens(genome: Genome, region: Region) -> np.ndarray:
    """The region's tokens as read on its strand (reverse complement on -)."""
    tokens = genome.tokens(region.contig)[region.start : region.end]
    return reverse_complement_tokens(tokens) if region.strand == "-" else tokens


def embed_regions(
    model: ModelSource | torch.nn.Module,
    genome: Genome,
    regions: Iterable[Region],
    **options,
) -> Iterator[SequenceEmbedding]:
    """Embeddings of genome regions, each embedded alone like a FASTA record of its
    sequence on its strand (``SequenceEmbedding.region`` says which); options as
    ``embed_sequences``."""
    regions = list(regions)
    records = ((r.id, region_tokens(genome, r)) for r in regions)
    parts = embed_sequences(model, records, **options)
    index = -1
    for part in parts:
        if part.first_row == 0:
            index += 1
        part.region = regions[index]
        yield part


def read_regions(bed: str | os.PathLike, genome: Genome) -> list[Region]:
    """The intervals of a BED file as regions of ``genome`` (contig names reconciled as
    for VCFs: exact, then accession); errors name the file and line."""
    regions = []
    for record in read_bed(bed):
        where = f"{bed}: line {record.line}"
        contig = genome.contig_of(record.contig, where=where)
        size = len(genome.sequence(contig))
        if record.end > size:
            raise DnahnetError(
                f"{where}: {record.contig}:{record.start}-{record.end} ends past the end of "
                f"{contig} ({size} nt)"
            )
        if record.end == record.start:
            raise DnahnetError(f"{where}: the region {record.contig}:{record.start} is empty")
        regions.append(Region(contig, record.start, record.end, record.strand, record.name))
    return regions


@dataclass
class EmbeddingSummary:
    sequences: int
    rows: int
    layer: EmbeddingLayer
    pool: str
    output: str

    def lines(self) -> list[str]:
        return [
            f"embed: {self.sequences:,} sequence(s), {self.rows:,} row(s) of "
            f"{self.layer.width} values (pool {self.pool}) -> {self.output}",
            f"embed: layer {self.layer.describe()}",
        ]


def write_embeddings(
    fasta: str | os.PathLike | None,
    output: str | os.PathLike,
    model: ModelSource | torch.nn.Module,
    *,
    regions: str | os.PathLike | None = None,
    genome: str | os.PathLike | None = None,
    stage: int = 0,
    pool: str = "none",
    context: int = 8192,
    batch_size: int | None = None,
    device="auto",
    dtype: str = "float32",
) -> EmbeddingSummary:
    """``dnahnet embed``: embeddings of FASTA records, or of BED regions of a genome, to
    .npz, .parquet or .h5 (``io.embeddings``). Inputs are checked before the model loads."""
    if fasta is not None and regions is not None:
        raise DnahnetError("give a FASTA file or --regions, not both")
    if fasta is None and regions is None:
        raise DnahnetError("give a FASTA file, or --regions with --genome")
    if (regions is None) != (genome is None):
        raise DnahnetError("--regions needs --genome (the FASTA its contigs come from)"
                           if genome is None else "--genome goes with --regions")
    _check_options(pool, stage, context, None, dtype)
    check_output_format(output)
    if regions is not None:
        reference = Genome.read(genome, query_label=str(regions), map_option=None)
        chosen = read_regions(regions, reference)
        total = sum(r.end - r.start for r in chosen)
    else:
        fasta = Path(fasta)
        total = sum(len(tokens) for _, _, tokens in iter_token_records(fasta))  # validates
    model_name = model.name if isinstance(model, ModelSource) else model.config.name
    network, device = ready_model(model, device)
    layer, _ = embedding_layer(network, stage)
    metadata = {
        "format": "dnahnet embeddings 1",
        "dnahnet_version": __version__,
        "model": model_name,
        "model_config": network.config.name,
        "stage": stage,
        "layer": layer.module,
        "layer_description": layer.describe(),
        "width": layer.width,
        "pooling": pool,
        "dtype": dtype,
        "coordinates": COORDINATES,
        "context": context,
        "input": display_path(regions if regions is not None else fasta),
    }
    options = dict(
        stage=stage, pool=pool, context=context, batch_size=batch_size, device=device,
        dtype=dtype, max_rows=WRITE_ROWS,
    )
    with (
        counter("nt", "embed", total) as advance,
        open_embedding_writer(
            output, metadata, layer.width, dtype, regions=regions is not None
        ) as writer,
    ):
        if regions is not None:
            parts = embed_regions(network, reference, chosen, on_progress=advance, **options)
        else:
            records = ((name, tokens) for name, _, tokens in iter_token_records(fasta))
            parts = embed_sequences(network, records, on_progress=advance, **options)
        for part in parts:
            writer.add(part)
    return EmbeddingSummary(writer.sequences, writer.rows, layer, pool, str(output))
