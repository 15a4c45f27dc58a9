"""bigWig tracks (pyBigWig) of per-base values: boundary probability and log-probability.

    paths = bigwig_paths("out/myco", stages=[1, 2], logprob=True)
    # track name -> path: "stage1.boundary_prob" -> out/myco.stage1.boundary_prob.bw,
    # "stage2.boundary_prob" -> out/myco.stage2.boundary_prob.bw, "logprob" -> out/myco.logprob.bw
    with open_bigwig(paths["logprob"], [("chr", 1000)]) as track:   # written atomically
        track.add("chr", values, decimals=LOGPROB_DECIMALS)        # one value per base

A bigWig holds the same intervals as the bedGraph of the same values
(``tracks.bedgraph_runs``: values rounded to ``decimals``, runs of equal values merged),
stored as float32. The header lists every contig with its length, from the FASTA,
in the order the contigs are then added (pyBigWig requires that order).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import atomic_path
from dnahnet_core.io.tracks import BEDGRAPH_DECIMALS, bedgraph_runs

LOGPROB_DECIMALS = 5  # as the logprob column of the per-position likelihood TSV
LOGPROB_TRACK = "logprob"


def boundary_track(stage: int) -> str:
    return f"stage{stage}.boundary_prob"


def bigwig_paths(prefix: str | os.PathLike, stages: Sequence[int], logprob: bool) -> dict:
    """Track name -> PREFIX.<track>.bw: one per stage of boundary probability (and the
    per-base log-probability with ``logprob``)."""
    prefix = str(prefix)
    names = [boundary_track(s) for s in stages] + ([LOGPROB_TRACK] if logprob else [])
    return {name: Path(f"{prefix}.{name}.bw") for name in names}


def check_prefix(prefix: str | os.PathLike) -> None:
    """A prefix must name files: not a directory, not ending in a path separator."""
    text = str(prefix)
    if not text or text.endswith(("/", os.sep)) or Path(text).is_dir():
        raise DnahnetError(f"{text or repr(text)}: --bigwig takes a file prefix (e.g. out/genome)")
    if text == "-":  # not standard output: bigWig is binary, one file per track
        raise DnahnetError("-: --bigwig writes files, not standard output; give a file prefix "
                           "(e.g. out/genome)")


def chrom_sizes(lengths: dict[str, int], where: str) -> list[tuple[str, int]]:
    """The bigWig header: non-empty contigs in the given order (empty ones have no data)."""
    sizes = [(name, int(n)) for name, n in lengths.items() if n > 0]
    if not sizes:
        raise DnahnetError(f"{where}: every sequence is empty; no bigWig track to write")
    return sizes


class BigWigTrack:
    """Adds per-base values of contigs to an open bigWig, contig by contig."""

    def __init__(self, handle, path: str, sizes: list[tuple[str, int]]):
        self.handle = handle
        self.path = path
        self.sizes = dict(sizes)

    def add(
        self,
        contig: str,
        values: np.ndarray,
        decimals: int = BEDGRAPH_DECIMALS,
        block: int = 65536,
    ) -> None:
        if self.sizes.get(contig) != len(values):
            raise ValueError(f"{self.path}: {contig} has {len(values)} values, header says "
                             f"{self.sizes.get(contig)}")
        starts, ends, run_values = bedgraph_runs(values, decimals)
        for first in range(0, starts.size, block):
            part = slice(first, first + block)
            try:
                self.handle.addEntries(
                    [contig] * len(starts[part]), starts[part], ends=ends[part],
                    values=run_values[part],
                )
            except RuntimeError as error:
                raise DnahnetError(f"{self.path}: cannot write ({error})") from None


def _pybigwig():
    try:
        import pyBigWig
    except ImportError:
        raise DnahnetError("--bigwig needs pyBigWig: pip install pyBigWig") from None
    return pyBigWig


@contextlib.contextmanager
def open_bigwig(path: str | os.PathLike, sizes: list[tuple[str, int]]) -> Iterator[BigWigTrack]:
    """A bigWig with header ``sizes``, written under a temporary name (``atomic``)."""
    pyBigWig = _pybigwig()
    with atomic_path(path) as tmp:
        handle = pyBigWig.open(str(tmp), "w")
        if handle is None:
            raise DnahnetError(f"{path}: cannot write")
        try:
            handle.addHeader(list(sizes), maxZooms=10)
            yield BigWigTrack(handle, str(path), sizes)
        finally:
            handle.close()
