"""Knockout plans for the essentiality protocol: where the stop cassette goes, which window.

For each gene: a window of ``window`` nt centred on the gene; the 15-nt cassette
``TAATAATAATAGTGA`` written on the gene's strand, in its reading frame, ``offset`` nt
after the first base of the start codon (docs/essentiality.md). Genes that cannot take
the cassette are ``Skipped`` with a reason.

    plan = plan_knockouts(annotated_genome, genes, window=8192, offset=12, circular=False)
    plan.knockouts   # [Knockout]: wild-type and mutant window tokens, cassette position
    plan.skipped     # [Skipped]: gene and reason

Coordinates here are 0-based half-open and *unwrapped*: on a circular contig a window
or gene may start below 0 or end past the contig length; bases are read modulo it
(``tasks.windows``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dnahnet_core.alphabet import encode, reverse_complement
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.annotations import AnnotatedGenome, Feature
from dnahnet_core.io.genome import Genome
from dnahnet_core.tasks.windows import ContigWindow, fitted_width, window_at, window_tokens

CASSETTE = "TAATAATAATAGTGA"


@dataclass(frozen=True)
class Knockout:
    """One gene ready to score: the two windows and where the cassette sits in them."""

    gene: Feature
    window: ContigWindow
    reference: np.ndarray  # uint8 tokens, forward strand of the contig
    mutant: np.ndarray
    cassette_start: int  # index in the window of the cassette's leftmost base
    cassette_genomic: tuple[int, int]  # unwrapped 0-based half-open contig interval


@dataclass(frozen=True)
class Skipped:
    gene: Feature
    reason: str


@dataclass
class KnockoutPlan:
    knockouts: list[Knockout] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    genome: Genome | None = None  # the contigs' tokens (``--genome-stream`` reads them whole)


def gene_span(gene: Feature, contig_length: int) -> tuple[int, int, int]:
    """(span start, span end, coding 5' end) unwrapped 0-based; the 5' end is the first
    base on the gene's strand (for minus-strand genes, the rightmost base of the span)."""
    total = gene.length if gene.crosses_origin else gene.end - gene.start + 1
    if gene.strand == "-":
        five = gene.segments[0][1] - 1
        return five - total + 1, five + 1, five
    five = gene.segments[0][0] - 1
    return five, five + total, five


def cassette_interval(gene: Feature, contig_length: int, offset: int) -> tuple[int, int] | str:
    """Unwrapped 0-based half-open interval the cassette replaces, or a reason it cannot.

    The start codon's first base is the 5' end moved by the phase (codon_start - 1);
    the cassette starts ``offset`` nt after it, on the gene's strand, and must lie inside
    the first coding segment (the whole gene for a gene that wraps the origin).
    """
    span_start, span_end, five = gene_span(gene, contig_length)
    first = gene.segments[0]
    room = (span_end - span_start) if gene.crosses_origin else first[1] - first[0] + 1
    needed = gene.phase + offset + len(CASSETTE)
    if room < needed:
        return f"too short: {room} nt, the cassette needs {needed} (phase + --offset + 15)"
    if gene.strand == "-":
        hi = five - gene.phase - offset + 1
        return hi - len(CASSETTE), hi
    lo = five + gene.phase + offset
    return lo, lo + len(CASSETTE)


def knockout_window(
    span: tuple[int, int], site: tuple[int, int], contig_length: int, width: int, circular: bool
) -> ContigWindow:
    """``width`` nt centred on the gene span, moved if needed to keep the cassette inside.

    A gene longer than the window would leave its cassette outside a centred window; the
    window is then shifted (the least possible) so that ``width // 8`` nt of context lie
    on each side of the cassette. Linear contigs clip the window at their ends; circular
    contigs wrap (a width above the contig length becomes the contig length).
    """
    width = fitted_width(width, contig_length, circular)
    start = (span[0] + span[1] - width) // 2
    margin = min(width // 8, max(0, (width - (site[1] - site[0])) // 2))
    if start > site[0] - margin:
        start = site[0] - margin
    if start + width < site[1] + margin:
        start = site[1] + margin - width
    return window_at(start, start + width, contig_length, circular)


def _skip_reason(gene: Feature, circular: bool) -> str | None:
    if gene.pseudo:
        return "pseudogene"
    if gene.strand not in {"+", "-"}:
        return "no strand"
    if gene.partial_5:
        return "partial at the 5' end (no start codon)"
    if gene.crosses_origin and not circular:
        return "crosses the origin of a contig read as linear (use --circular)"
    return None


def plan_knockouts(
    genome: AnnotatedGenome,
    genes: Sequence[Feature],
    *,
    window: int = 8192,
    offset: int = 12,
    circular: bool = False,
) -> KnockoutPlan:
    """Reference and mutant windows for every gene that can be scored; reasons for the rest."""
    if window < 2 * len(CASSETTE):
        raise DnahnetError(f"--window {window}: must be at least {2 * len(CASSETTE)} nt")
    if offset < 0 or offset % 3:
        raise DnahnetError(f"--offset {offset}: must be a non-negative multiple of 3 (in frame)")
    contigs = Genome(genome.contigs, source=genome.sources[-1] if genome.sources else "genome")
    plan = KnockoutPlan(genome=contigs)
    cassette = {"+": encode(CASSETTE), "-": encode(reverse_complement(CASSETTE))}
    for gene in genes:
        reason = _skip_reason(gene, circular)
        if reason is None:
            length = len(genome.contigs[gene.contig])
            site = cassette_interval(gene, length, offset)
            if isinstance(site, str):
                reason = site
        if reason is not None:
            plan.skipped.append(Skipped(gene, reason))
            continue
        contig = contigs.tokens(gene.contig)
        span = gene_span(gene, length)
        win = knockout_window(span, site, length, window, circular)
        reference = np.ascontiguousarray(window_tokens(contig, win))
        mutant = reference.copy()
        at = site[0] - win.start
        mutant[at : at + len(CASSETTE)] = cassette[gene.strand]
        plan.knockouts.append(Knockout(gene, win, reference, mutant, at, site))
    return plan
