"""Genome-browser tracks: BED6 and bedGraph writers, track lines, reading BED back.

The ``segments`` writers (``iter_segments_bed``, ``bedgraph_paths``,
``write_segment_track_lines``) turn ``tasks.segments.ContigSegments`` (anything with
``name``, ``stages`` and ``chunks(stage)``) into these formats.

Coordinates are 0-based, half-open everywhere in this module (the BED convention).

Ordering: both writers expect their caller to emit contigs in ``contig_sort_key``
order (byte order of the name, i.e. ``LC_ALL=C sort -k1,1``) and intervals by start,
which is what ``bedGraphToBigWig`` and ``bedToBigBed`` require (``sort -k1,1 -k2,2n``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.compression import TEXT_ENCODING

if TYPE_CHECKING:
    from dnahnet_core.tasks.segments import ContigSegments

BEDGRAPH_DECIMALS = 4


def contig_sort_key(name: str) -> bytes:
    """Byte order of contig names, the order of ``LC_ALL=C sort -k1,1``."""
    return name.encode("utf-8")


def _quote(value: str) -> str:
    return '"' + value.replace('"', "'") + '"'


def bed_track_line(name: str, description: str = "") -> str:
    """A UCSC ``track`` line for a BED6 file whose score column is meaningful (0..1000)."""
    parts = ["track", f"name={_quote(name)}"]
    if description:
        parts.append(f"description={_quote(description)}")
    parts.append("useScore=1")
    return " ".join(parts) + "\n"


def bedgraph_track_line(name: str, description: str = "") -> str:
    """A UCSC ``track type=bedGraph`` line (note: ``bedGraphToBigWig`` rejects track lines)."""
    parts = ["track", "type=bedGraph", f"name={_quote(name)}"]
    if description:
        parts.append(f"description={_quote(description)}")
    parts.append("viewLimits=0:1 autoScale=off")
    return " ".join(parts) + "\n"


def format_bed6(
    contig: str,
    starts: np.ndarray,
    ends: np.ndarray,
    names: Iterable[str],
    scores: np.ndarray,
    strand: str = ".",
) -> str:
    """BED6 lines (one string) for intervals of one contig, in the order given."""
    lines = [
        f"{contig}\t{s}\t{e}\t{n}\t{c}\t{strand}\n"
        for s, e, n, c in zip(starts.tolist(), ends.tolist(), names, scores.tolist(), strict=True)
    ]
    return "".join(lines)


def bedgraph_runs(values: np.ndarray, decimals: int = BEDGRAPH_DECIMALS):
    """Merge runs of equal (rounded) values: (starts, ends, rounded values)."""
    rounded = np.round(np.asarray(values, dtype=np.float64), decimals)
    n = rounded.size
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, rounded
    change = np.flatnonzero(rounded[1:] != rounded[:-1]) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    ends = np.concatenate((change, [n])).astype(np.int64)
    return starts, ends, rounded[starts]


def format_bedgraph(contig: str, values: np.ndarray, decimals: int = BEDGRAPH_DECIMALS) -> str:
    """bedGraph lines covering ``values`` (one per base) with runs of equal values merged."""
    return "".join(iter_bedgraph(contig, values, decimals))


def iter_bedgraph(
    contig: str, values: np.ndarray, decimals: int = BEDGRAPH_DECIMALS, block: int = 65536
) -> Iterator[str]:
    """``format_bedgraph`` in blocks of at most ``block`` lines (bounded memory)."""
    starts, ends, run_values = bedgraph_runs(values, decimals)
    for first in range(0, starts.size, block):
        part = slice(first, first + block)
        yield "".join(
            f"{contig}\t{s}\t{e}\t{v:g}\n"
            for s, e, v in zip(
                starts[part].tolist(), ends[part].tolist(), run_values[part].tolist(), strict=True
            )
        )


def segments_bed(segments: ContigSegments) -> str:
    """BED6 text of all chunks of all stages of a contig, sorted by start then stage."""
    return "".join(iter_segments_bed(segments))


def iter_segments_bed(segments: ContigSegments, block: int = 65536) -> Iterator[str]:
    """``segments_bed`` in blocks of at most ``block`` lines (bounded memory); a chunk of
    stage s is named ``stage{s}`` and scored by its first base's boundary probability."""
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


def bedgraph_paths(path: Path, stages: list[int]) -> dict[int, Path]:
    """One file per stage: X.bedgraph -> X.stage1.bedgraph (unchanged for a single stage)."""
    if len(stages) == 1:
        return {stages[0]: path}
    suffix = path.suffix if path.suffix.lower() in (".bedgraph", ".bg", ".bdg") else ""
    stem = path.name[: -len(suffix)] if suffix else path.name
    return {s: path.with_name(f"{stem}.stage{s}{suffix or '.bedgraph'}") for s in stages}


def write_segment_track_lines(bed, graphs: dict, stages: list[int]) -> None:
    """UCSC track lines at the top of the chunk BED and of each stage's bedGraph."""
    label = "stage " + ",".join(map(str, stages))
    bed.write(bed_track_line("dnahnet_chunks", f"dnaHNet chunks, {label}"))
    for s, handle in graphs.items():
        handle.write(bedgraph_track_line(f"dnahnet_stage{s}", f"dnaHNet stage {s} boundary prob"))


@dataclass(frozen=True)
class BedRecord:
    contig: str
    start: int
    end: int
    name: str
    score: int
    strand: str = "."  # column 6: +, - or . (unknown)
    line: int = 0  # line number in the file (for messages)


def read_bed(path: str | os.PathLike) -> Iterator[BedRecord]:
    """Read BED (3 to 12 columns); skips ``track``/``browser``/``#`` lines.

    Errors name the file and line: too few columns, non-integer or negative
    coordinates, end before start, a strand other than +, - or ..
    """
    path = Path(path)
    seen = False
    with open(path, encoding=TEXT_ENCODING, errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith(("track", "browser", "#")):
                continue
            fields = line.split("\t")
            where = f"{path}: line {number}"
            if len(fields) < 3:
                raise DnahnetError(f"{where}: BED needs at least 3 tab-separated columns")
            try:
                start, end = int(fields[1]), int(fields[2])
                score = int(float(fields[4])) if len(fields) > 4 and fields[4] != "." else 0
            except ValueError:
                raise DnahnetError(f"{where}: coordinates or score are not numbers") from None
            if start < 0 or end < start:
                raise DnahnetError(f"{where}: invalid interval {start}-{end}")
            strand = fields[5] if len(fields) > 5 else "."
            if strand not in ("+", "-", "."):
                raise DnahnetError(f"{where}: strand {strand!r} (column 6) is not +, - or .")
            seen = True
            name = fields[3] if len(fields) > 3 else ""
            yield BedRecord(fields[0], start, end, name, score, strand, number)
    if not seen:
        raise DnahnetError(f"{path}: no BED intervals found")
