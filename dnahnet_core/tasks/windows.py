"""Window geometry, one vocabulary for every task (no model here; ``engine`` runs them).

Coordinates are 0-based half-open throughout.

``ContigWindow``: a window on one contig, clipped at the ends of a linear contig or
wrapped around the origin of a circular one. It is kept in *unwrapped* coordinates:
on a circular contig ``start`` may be negative and ``end`` may exceed the contig
length; positions are read modulo the length.

    win = centred_window(len(contig), start=1000, end=1001, width=8192, circular=True)
    ref = window_tokens(contig_tokens, win)
    alt = substituted_window(contig_tokens, win, 1000, 1001, encode("T"))

``centred_window`` centres on an interval (score-variants, score-dms),
``breakpoint_window`` starts half a window before a position (alleles longer than the
window); other placements
(essentiality moves its window to keep the cassette inside) use ``fitted_width`` and
``window_at``, which hold the clip/wrap rule. ``substituted_window`` replaces
``[start, end)`` by a replacement of any length and keeps the window length by moving
the right edge (an insertion pushes sequence out on the right, a deletion pulls more
in), so the reference and the alternative window start at the same base and hold the
same number of positions.

``Tile``: one of the overlapping windows that cover a whole sequence, with the range
whose predictions are kept (``plan_tiles``; used by likelihood and segments).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ContigWindow:
    start: int  # unwrapped, 0-based
    end: int  # unwrapped, exclusive
    contig_length: int
    circular: bool
    clipped: bool  # a linear contig end cut the window short

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def wrapped(self) -> bool:
        return self.start < 0 or self.end > self.contig_length


def fitted_width(width: int, contig_length: int, circular: bool) -> int:
    """A circular contig holds at most its own length in one window."""
    return min(width, contig_length) if circular else width


def window_at(start: int, end: int, contig_length: int, circular: bool) -> ContigWindow:
    """The window ``[start, end)``: wrapped on a circular contig, clipped on a linear one."""
    if circular:
        return ContigWindow(start, end, contig_length, True, False)
    clipped_start, clipped_end = max(0, start), min(contig_length, end)
    clipped = (clipped_start, clipped_end) != (start, end)
    return ContigWindow(clipped_start, clipped_end, contig_length, False, clipped)


def centred_window(
    contig_length: int, start: int, end: int, width: int, *, circular: bool = False
) -> ContigWindow:
    """A window of ``width`` positions centred on ``[start, end)`` (at least the interval).

    Linear contigs: the window is cut at the contig ends (``clipped``). Circular contigs:
    it wraps around the origin; a width above the contig length is reduced to it.
    """
    if not 0 <= start <= end <= contig_length:
        raise ValueError(f"interval [{start}, {end}) outside a contig of length {contig_length}")
    width = fitted_width(width, contig_length, circular)
    left = max(0, (width - (end - start)) // 2)
    win_start = start - left
    return window_at(win_start, max(win_start + width, end), contig_length, circular)


def breakpoint_window(
    contig_length: int, start: int, width: int, *, circular: bool = False
) -> ContigWindow:
    """``width`` positions from ``width // 2`` before ``start``: the window of an allele
    longer than the window, scored at its left breakpoint (docs/score-variants.md)."""
    width = fitted_width(width, contig_length, circular)
    return window_at(start - width // 2, start - width // 2 + width, contig_length, circular)


def window_offset(window: ContigWindow, position: int) -> int:
    """Index in ``window`` of contig position ``position`` (unwrapped as the window is)."""
    if position < window.start:  # the position wrapped into the window from the right
        position += window.contig_length
    return position - window.start


def _take(tokens: np.ndarray, start: int, end: int, circular: bool) -> np.ndarray:
    if end <= start:
        return tokens[:0]
    if circular:
        return np.take(tokens, np.arange(start, end), mode="wrap")
    return tokens[max(0, start) : min(len(tokens), end)]


def window_tokens(contig: np.ndarray, window: ContigWindow) -> np.ndarray:
    """The tokens of ``window`` (a copy when wrapping, a view otherwise)."""
    return _take(contig, window.start, window.end, window.circular)


def substituted_window(
    contig: np.ndarray, window: ContigWindow, start: int, end: int, replacement: np.ndarray
) -> np.ndarray:
    """``window`` with ``[start, end)`` replaced, its length kept by moving the right edge.

    ``start``/``end`` are contig coordinates inside the window. On a linear contig a
    deletion near the end may leave the alternative window shorter (nothing to pull in).
    """
    shift = window_offset(window, start) - (start - window.start)
    start, end = start + shift, end + shift
    left = _take(contig, window.start, start, window.circular)
    room = window.length - len(left) - len(replacement)
    if room < 0:
        return np.concatenate([left, replacement])[: window.length]
    right = _take(contig, end, end + room, window.circular)
    return np.concatenate([left, np.asarray(replacement, dtype=contig.dtype), right])


@dataclass(frozen=True)
class Tile:
    """A model window [start, end) whose predictions are kept on [keep_start, keep_end)."""

    start: int
    end: int
    keep_start: int
    keep_end: int


def plan_tiles(length: int, context: int, stride: int) -> list[Tile]:
    """Tile a sequence of ``length`` nt; every kept base has >= ``context`` nt of left
    context inside its tile, or all of the sequence to its left where that is shorter.

    The first tile starts at 0 and keeps all its positions; every later tile keeps its
    last ``stride`` positions. All tiles of a long sequence have the same length (the
    last one is shifted left to fill up), so they batch without padding.
    """
    if context < 0 or stride < 1:
        raise ValueError("context must be >= 0 and stride >= 1")
    width = context + stride
    if length <= width:
        return [Tile(0, length, 0, length)]
    tiles = [Tile(0, width, 0, width)]
    keep = width
    while keep < length:
        keep_end = min(keep + stride, length)
        tiles.append(Tile(keep_end - width, keep_end, keep, keep_end))
        keep = keep_end
    return tiles
