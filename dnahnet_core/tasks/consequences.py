"""What a variant does to the genes of an annotation (``score-variants --annotation``).

    annotator = ConsequenceAnnotator(annotated_genome, upstream=200)
    annotator.annotate("NC_000913.3", pos=1234, ref="A", alts=["G", "AT"])
    # -> [Consequence("missense", "b0001", "K12N"), Consequence("frameshift", "b0001", "K12fs")]

Each ALT allele gets one consequence: the most severe over the features it touches, in
the order of ``CONSEQUENCES`` (ties: the nearest gene start for ``upstream``, else the
first feature in the annotation). The alleles are trimmed of the bases they share with
REF (the VCF anchor base), first from the left, then from the right, so ``AT > ATT`` is
an insertion of ``T``. Classes:

* ``stop_gained``: a stop codon appears before the CDS's own stop (any length change in
  frame, or a substitution);
* ``frameshift``: the length change inside a CDS is not a multiple of 3;
* ``stop_lost``: the stop codon becomes a sense codon (or is deleted);
* ``start_lost``: the start codon becomes a codon that is not a start codon of the genetic
  code (or is deleted, also by a deletion of the whole gene); ``ATG > GTG`` keeps a start
  codon and is ``synonymous``;
* ``inframe_indel``: an insertion or deletion of whole codons without a stop change;
* ``missense`` / ``synonymous``: a substitution (SNV or MNV) that changes / keeps the
  amino acids of the codons it touches (a stop codon changed into another stop is
  ``synonymous``);
* ``incomplete_codon``: a change in frame that touches the bases of a partial CDS outside
  its complete codons;
* ``noncoding``: inside an RNA gene (tRNA, rRNA, ...) or a pseudogene;
* ``upstream``: within ``upstream`` nt before a gene's start on the gene's strand;
* ``intergenic``: none of the above.

A change that lies partly inside a CDS and partly outside (or across the junction of a
multi-part CDS) is ``start_lost`` when it touches the start codon, ``stop_lost`` when it
touches the stop codon, else ``frameshift`` or ``inframe_indel`` by its length change.
An insertion exactly at a CDS end (before its first or after its last base) is outside
the CDS. Codons are read with the CDS's genetic code (``transl_table`` of the
annotation, else 11; ``genetic_code`` overrides both), from the phase of a 5'-partial
CDS; a 5'- or 3'-partial CDS has no start or stop codon to lose. The protein change is
the reference peptide of the codons touched, the number of the first, then the
alternative peptide (``K12N``, ``Q40*``, ``KL12K``, ``-13Q`` for an insertion between
codons 12 and 13, ``K12fs`` for a frameshift; empty outside CDSs and for changes across
a CDS edge).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dnahnet_core.alphabet import reverse_complement
from dnahnet_core.io.annotations import AnnotatedGenome, Feature
from dnahnet_core.tasks.genetic_code import feature_codes, is_start_codon, translate
from dnahnet_core.tasks.segments_report import genes_from_features

# most severe first
CONSEQUENCES = (
    "stop_gained", "frameshift", "stop_lost", "start_lost", "inframe_indel", "missense",
    "synonymous", "incomplete_codon", "noncoding", "upstream", "intergenic",
)  # fmt: skip
_SEVERITY = {kind: i for i, kind in enumerate(CONSEQUENCES)}
RNA_TYPES = frozenset({
    "tRNA", "rRNA", "tmRNA", "ncRNA", "misc_RNA", "RNase_P_RNA", "SRP_RNA", "antisense_RNA",
    "RNase_MRP_RNA", "snRNA", "snoRNA",
})  # fmt: skip
DEFAULT_UPSTREAM = 200


@dataclass(frozen=True)
class Consequence:
    kind: str  # one of CONSEQUENCES
    gene: str = ""  # the feature's label (locus tag); empty when intergenic
    protein: str = ""  # e.g. K12N; empty outside CDSs


INTERGENIC = Consequence("intergenic")


@dataclass(frozen=True)
class _Gene:
    """One annotated gene: a CDS (coding) or an RNA gene / pseudogene (noncoding)."""

    feature: Feature
    positions: np.ndarray  # 0-based forward positions in 5'->3' order on the gene's strand
    coding: bool
    code: int = 0
    has_start: bool = True  # the 5' end is complete (a start codon / a transcription start)
    has_stop: bool = True


class _Intervals:
    """Pieces [start, end) of one contig with an id each: which pieces overlap a query."""

    def __init__(self, pieces: list[tuple[int, int, int]]) -> None:
        pieces.sort()
        self.starts = np.array([p[0] for p in pieces], dtype=np.int64)
        self.ends = np.array([p[1] for p in pieces], dtype=np.int64)
        self.ids = np.array([p[2] for p in pieces], dtype=np.int64)
        self.longest = int((self.ends - self.starts).max()) if pieces else 0

    def overlapping(self, start: int, end: int) -> list[int]:
        lo = np.searchsorted(self.starts, start - self.longest, side="left")
        hi = np.searchsorted(self.starts, end, side="left")
        hits = self.ids[lo:hi][self.ends[lo:hi] > start]
        return sorted(set(hits.tolist()))


def _pieces(positions: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive forward positions as [start, end) pieces."""
    ordered = np.unique(positions)
    breaks = np.flatnonzero(np.diff(ordered) != 1)
    starts = np.r_[ordered[0], ordered[breaks + 1]]
    ends = np.r_[ordered[breaks], ordered[-1]] + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


class ConsequenceAnnotator:
    """Consequences of alleles on the genes of ``genome`` (see the module doc)."""

    def __init__(
        self,
        genome: AnnotatedGenome,
        *,
        upstream: int = DEFAULT_UPSTREAM,
        genetic_code: int | None = None,
        circular: bool = False,
    ) -> None:
        self.sequences = genome.contigs
        self.upstream = upstream
        self.circular = circular
        lengths = {name: len(seq) for name, seq in genome.contigs.items()}
        cds = [f for f in genome.features_of("CDS") if not f.pseudo and f.strand in "+-"]
        codes, self.code_source = feature_codes(cds, genetic_code) if cds else ([], "none")
        code_of = {id(f): code for f, code in zip(cds, codes, strict=True)}
        self.genes: list[_Gene] = []
        for feature in genome.features:
            coding = id(feature) in code_of
            noncoding = feature.strand in "+-" and (
                feature.type in RNA_TYPES
                or (feature.pseudo and feature.type in ("CDS", "pseudogene", "gene"))
                or feature.type == "pseudogene"
            )
            if not (coding or noncoding) or feature.contig not in lengths:
                continue
            (transcript,) = genes_from_features(
                [_as_cds(feature)], lengths
            )  # positions in 5'->3' order, wrapped at the origin
            self.genes.append(
                _Gene(feature, transcript.positions, coding, code_of.get(id(feature), 0),
                      not feature.partial_5, not feature.partial_3)
            )
        self._bodies = self._index(lengths, upstream=False)
        self._upstreams = self._index(lengths, upstream=True)

    # ------------------------------------------------------------ indexes

    def _index(self, lengths: dict[str, int], *, upstream: bool) -> dict[str, _Intervals]:
        pieces: dict[str, list[tuple[int, int, int]]] = {name: [] for name in lengths}
        for i, gene in enumerate(self.genes):
            contig, length = gene.feature.contig, lengths[gene.feature.contig]
            if not upstream:
                runs = _pieces(gene.positions)
            elif gene.has_start and self.upstream > 0:
                start = int(gene.positions[0])
                reach = min(self.upstream, length)  # more than the contig adds no base
                if gene.feature.strand == "+":
                    span = np.arange(start - reach, start)
                else:
                    span = np.arange(start + 1, start + reach + 1)
                if self.circular:
                    span = span % length
                else:
                    span = span[(span >= 0) & (span < length)]
                runs = _pieces(span) if span.size else []
            else:
                runs = []
            pieces[contig] += [(s, e, i) for s, e in runs]
        return {name: _Intervals(p) for name, p in pieces.items()}

    # ------------------------------------------------------------ annotation

    def annotate(
        self, contig: str, pos: int, ref: str, alts: Sequence[str | None]
    ) -> list[Consequence | None]:
        """One consequence per ALT (None where the ALT is None: not a nucleotide allele).
        ``contig``: the sequence record name; ``pos``: 1-based VCF position of REF."""
        return [
            None if alt is None else self.consequence(contig, pos - 1, ref.upper(), alt.upper())
            for alt in alts
        ]

    def consequence(self, contig: str, start: int, ref: str, alt: str) -> Consequence:
        """The consequence of REF -> ALT with REF at 0-based ``start`` of ``contig``."""
        sequence = self.sequences[contig]
        a, b, new = _trimmed(start, ref, alt)
        # the bases a change touches; an insertion touches the two bases around it
        touched = (a, b) if b > a else (a - 1, a + 1)
        best: tuple | None = None
        for i in self._bodies[contig].overlapping(*touched):
            gene = self.genes[i]
            if gene.coding:
                found = _coding_consequence(gene, sequence, start, ref, a, b, new)
            else:
                found = _noncoding_consequence(gene, a, b)
            if found is not None:
                key = (_SEVERITY[found.kind], 0, i)
                best = min(best, (key, found)) if best else (key, found)
        if best is None:  # every gene body outranks upstream
            for i in self._upstreams[contig].overlapping(*touched):
                gene = self.genes[i]
                distance = self._distance(gene, touched, len(sequence))
                key = (_SEVERITY["upstream"], distance, i)
                found = Consequence("upstream", gene.feature.label)
                best = min(best, (key, found)) if best else (key, found)
        return INTERGENIC if best is None else best[1]

    def _distance(self, gene: _Gene, touched: tuple[int, int], length: int) -> int:
        """nt from the touched bases to the gene's first base, upstream on its strand."""
        start = int(gene.positions[0])
        bases = np.arange(max(touched[0], 0), min(touched[1], length))
        steps = (start - bases) if gene.feature.strand == "+" else (bases - start)
        if self.circular:
            steps = steps % length
        steps = steps[(steps >= 1) & (steps <= self.upstream)]
        return int(steps.min()) if steps.size else self.upstream


def _as_cds(feature: Feature) -> Feature:
    """The feature as ``genes_from_features`` reads transcripts (CDS, not pseudo)."""
    from dataclasses import replace

    return replace(feature, type="CDS", pseudo=False)


def _complement(bases: str) -> str:
    return reverse_complement(bases)[::-1]


def _trimmed(start: int, ref: str, alt: str) -> tuple[int, int, str]:
    """The changed span [a, b) of the forward strand and its new bases, without the bases
    REF and ALT share at the left, then at the right."""
    left = 0
    while left < min(len(ref), len(alt)) and ref[left] == alt[left]:
        left += 1
    right = 0
    while (
        right < min(len(ref), len(alt)) - left
        and ref[len(ref) - 1 - right] == alt[len(alt) - 1 - right]
    ):
        right += 1
    return start + left, start + len(ref) - right, alt[left : len(alt) - right]


def _noncoding_consequence(gene: _Gene, a: int, b: int) -> Consequence | None:
    positions = gene.positions
    if b > a:
        inside = bool(((positions >= a) & (positions < b)).any())
    else:  # an insertion between two bases of the gene
        inside = bool(np.isin([a - 1, a], positions).all())
    return Consequence("noncoding", gene.feature.label) if inside else None


def _coding_consequence(
    gene: _Gene, sequence: str, ref_start: int, ref: str, a: int, b: int, new: str
) -> Consequence | None:
    """The consequence of replacing forward bases [a, b) by ``new`` on one CDS."""
    positions = gene.positions
    minus = gene.feature.strand == "-"
    label = gene.feature.label
    delta = len(new) - (b - a)
    if b == a:  # an insertion: inside only between two adjacent transcript bases
        before, after = (a, a - 1) if minus else (a - 1, a)
        hits = np.flatnonzero((positions[:-1] == before) & (positions[1:] == after))
        if not hits.size:
            return None
        i0 = i1 = int(hits[0]) + 1
    else:
        hits = np.flatnonzero((positions >= a) & (positions < b))
        if not hits.size:
            return None
        i0, i1 = int(hits[0]), int(hits[-1]) + 1
        if hits.size != b - a or i1 - i0 != hits.size:  # partly outside, or across parts
            return Consequence(_edge_kind(gene, hits, delta), label)
    phase = gene.feature.phase
    codons = (len(positions) - phase) // 3
    c0, c1 = i0 - phase, i1 - phase  # in coding coordinates (0 = first base of codon 1)
    if delta % 3:
        if c0 >= 3 * codons:
            return Consequence("incomplete_codon", label)
        first = max(c0, 0) // 3
        return Consequence("frameshift", label, f"{_peptide(gene, sequence, first)}{first + 1}fs")
    if c0 < 0 or c1 > 3 * codons:
        return Consequence("incomplete_codon", label)
    k0 = c0 // 3
    k1 = k0 - 1 if (b == a and c0 % 3 == 0) else ((c1 - 1) // 3 if b > a else k0)
    region = positions[phase + 3 * k0 : phase + 3 * (k1 + 1)]
    bases = "".join(
        ref[p - ref_start] if ref_start <= p < ref_start + len(ref) else sequence[p]
        for p in region.tolist()
    )
    if minus:  # the bases are in transcript order already: complement them only
        bases = _complement(bases)
        new = reverse_complement(new)
    offset = i0 - (phase + 3 * k0)
    mutant = bases[:offset] + new + bases[offset + (i1 - i0) :]
    ref_aa, alt_aa = translate(bases, gene.code), translate(mutant, gene.code)
    start_lost = False
    if gene.has_start and k0 == 0 and bases:
        if len(mutant) >= 3 and is_start_codon(mutant[:3], gene.code):
            ref_aa, alt_aa = "M" + ref_aa[1:], "M" + alt_aa[1:]  # the initiator reads Met
        else:
            start_lost = True
    ref_stop, alt_stop = ref_aa.find("*"), alt_aa.find("*")
    if alt_stop >= 0 and (ref_stop < 0 or alt_stop < ref_stop):
        kind = "stop_gained"
    elif ref_stop >= 0 and alt_stop < 0:
        kind = "stop_lost"
    elif start_lost:
        kind = "start_lost"
    elif delta:
        kind = "inframe_indel"
    else:
        kind = "synonymous" if ref_aa == alt_aa else "missense"
    return Consequence(kind, label, f"{ref_aa or '-'}{k0 + 1}{alt_aa or '-'}")


def _edge_kind(gene: _Gene, hits: np.ndarray, delta: int) -> str:
    """A change partly outside a CDS (or across the junction of its parts)."""
    if gene.has_start and (hits < 3).any():
        return "start_lost"
    if gene.has_stop and (hits >= len(gene.positions) - 3).any():
        return "stop_lost"
    return "frameshift" if delta % 3 else "inframe_indel"


def _peptide(gene: _Gene, sequence: str, codon: int) -> str:
    """The amino acid of codon ``codon`` (0-based) of a CDS ('' past its last codon)."""
    at = gene.positions[gene.feature.phase + 3 * codon : gene.feature.phase + 3 * codon + 3]
    bases = "".join(sequence[p] for p in at.tolist())
    if len(bases) < 3:
        return ""
    if gene.feature.strand == "-":
        bases = _complement(bases)
    if codon == 0 and gene.has_start and is_start_codon(bases, gene.code):
        return "M"
    return translate(bases, gene.code)


MIN_PER_CLASS = 5  # fewer stop_gained or synonymous ALTs: no interval in the summary


def consequence_summary(llr_by_kind: dict[str, list[float]]) -> list[str]:
    """Summary lines: mean and median LLR per class, and the AUROC of -LLR for
    stop_gained against synonymous (with a 95% bootstrap interval) beside chance."""
    from dnahnet_core.tasks.classification_metrics import auroc_with_interval

    lines = ["consequence        n   mean LLR  median LLR"]
    for kind in CONSEQUENCES:
        values = llr_by_kind.get(kind, [])
        if values:
            lines.append(f"{kind:<16}{len(values):>5}{np.mean(values):>11.4f}"
                         f"{np.median(values):>12.4f}")
    stops, synonymous = llr_by_kind.get("stop_gained", []), llr_by_kind.get("synonymous", [])
    counts = f"{len(stops)} stop_gained, {len(synonymous)} synonymous"
    result = auroc_with_interval(-np.asarray(stops), -np.asarray(synonymous))
    if result is None:
        lines.append(f"AUROC of -LLR, stop_gained vs synonymous: n/a ({counts}); chance 0.5")
    elif min(len(stops), len(synonymous)) < MIN_PER_CLASS:  # a bootstrap of 1-3 values
        lines.append(
            f"AUROC of -LLR, stop_gained vs synonymous: {result['auroc']:.3f} ({counts}: too "
            f"few for an interval, at least {MIN_PER_CLASS} of each); chance 0.5"
        )
    else:
        low, high = result["ci95"]
        lines.append(
            f"AUROC of -LLR, stop_gained vs synonymous: {result['auroc']:.3f} "
            f"[95% CI {low:.3f}, {high:.3f}] ({counts}); chance 0.5"
        )
    return lines
