"""Windows of a contig centred on an interval, clipped at contig ends or wrapped (circular).

Coordinates are 0-based half-open throughout. A window is kept in *unwrapped*
coordinates: on a circular contig ``start`` may be negative and ``end`` may exceed
the contig length; positions are read modulo the length.

    win = centred_window(len(contig), start=1000, end=1001, width=8192, circular=True)
    ref = window_tokens(contig_tokens, win)
    alt = substituted_window(contig_tokens, win, 1000, 1001, encode("T"))

``substituted_window`` replaces ``[start, end)`` by a replacement of any length and keeps
the window length by moving the right edge (an insertion pushes sequence out on the
right, a deletion pulls more in), so the reference and the alternative window start at
the same base and hold the same number of positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
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


def centred_window(
    contig_length: int, start: int, end: int, width: int, *, circular: bool = False
) -> Window:
    """A window of ``width`` positions centred on ``[start, end)`` (at least the interval).

    Linear contigs: the window is cut at the contig ends (``clipped``). Circular contigs:
    it wraps around the origin; a width above the contig length is reduced to it.
    """
    if not 0 <= start <= end <= contig_length:
        raise ValueError(f"interval [{start}, {end}) outside a contig of length {contig_length}")
    if circular:
        width = min(width, contig_length)
    span = end - start
    left = max(0, (width - span) // 2)
    win_start = start - left
    win_end = max(win_start + width, end)
    if circular:
        return Window(win_start, win_end, contig_length, True, False)
    clipped_start, clipped_end = max(0, win_start), min(contig_length, win_end)
    clipped = (clipped_start, clipped_end) != (win_start, win_end)
    return Window(clipped_start, clipped_end, contig_length, False, clipped)


def _take(tokens: np.ndarray, start: int, end: int, circular: bool) -> np.ndarray:
    if end <= start:
        return tokens[:0]
    if circular:
        return np.take(tokens, np.arange(start, end), mode="wrap")
    return tokens[max(0, start) : min(len(tokens), end)]


def window_tokens(contig: np.ndarray, window: Window) -> np.ndarray:
    """The tokens of ``window`` (a copy when wrapping, a view otherwise)."""
    return _take(contig, window.start, window.end, window.circular)


def substituted_window(
    contig: np.ndarray, window: Window, start: int, end: int, replacement: np.ndarray
) -> np.ndarray:
    """``window`` with ``[start, end)`` replaced, its length kept by moving the right edge.

    ``start``/``end`` are contig coordinates inside the window. On a linear contig a
    deletion near the end may leave the alternative window shorter (nothing to pull in).
    """
    if start < window.start:  # the interval wrapped into the window from the right
        start += window.contig_length
        end += window.contig_length
    left = _take(contig, window.start, start, window.circular)
    room = window.length - len(left) - len(replacement)
    if room < 0:
        return np.concatenate([left, replacement])[: window.length]
    right = _take(contig, end, end + room, window.circular)
    return np.concatenate([left, np.asarray(replacement, dtype=contig.dtype), right])
