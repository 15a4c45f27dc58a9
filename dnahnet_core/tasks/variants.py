"""Score VCF variants with the likelihood engine (``dnahnet score-variants``).

For each ALT allele: LLR = log P(ALT window) - log P(REF window), where each total is
the sum of log P(x_t | x_<t) over every position of a ``window``-nt window centred on
the REF span. The ALT window starts at the same base and has the same length: the ALT
allele replaces the REF span and the right edge moves (insertions push bases out,
deletions pull bases in). Positions before the variant have identical log-probabilities
in both windows, so they cancel exactly; the engine computes them once (prefix reuse).
With reverse-complement averaging the same is done on both windows reverse-complemented
and the LLR is the mean of the two strands. Negative = predicted deleterious.
With an annotation, every scored ALT also gets its consequence on the genes
(``tasks.consequences``), and the summary gives the LLR per consequence class.
See docs/score-variants.md.

A record's way from the input to the output, all in ``score_vcf``:

    reader = VcfReader(vcf)                             # io.vcf: VcfRecord per line
    genome = Genome.read(reference, chrom_map=...)      # io.genome: tokens, contig names
    for planned, sites in plan_chunks(reader, genome, options, summary, chunk_sites):
        scored = score_chunk(planned, list(engine.score(sites)), summary)  # ScoredRecord
        annotate_records(scored, annotator, genome, contig_names, summary)  # --annotation
        write(scored)                                   # io.variant_scores: VCF or TSV
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnahnet_core.alphabet import encode
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.annotations import load_annotated_genome
from dnahnet_core.io.genome import Genome
from dnahnet_core.io.variant_scores import ScoringHeader, output_kind, scored_variant_output
from dnahnet_core.io.vcf import BASES, VcfReader, VcfRecord, allele_kind
from dnahnet_core.model_source import ModelSource, ready_model
from dnahnet_core.progress import counter, per_second
from dnahnet_core.tasks.consequences import (
    CONSEQUENCES,
    DEFAULT_UPSTREAM,
    Consequence,
    ConsequenceAnnotator,
    consequence_summary,
)
from dnahnet_core.tasks.engine import (
    Engine,
    ModelWorkers,
    Site,
    SiteScore,
    Substitution,
    check_scoring_options,
    stream_substitutions,
)
from dnahnet_core.tasks.genetic_code import check_genetic_code
from dnahnet_core.tasks.windows import (
    breakpoint_window,
    centred_window,
    substituted_window,
    window_offset,
    window_tokens,
)

SKIP_REASONS = {
    "symbolic": "symbolic allele (<DEL>, <INS>, ...)",
    "star": "'*' (allele missing due to an overlapping deletion)",
    "breakend": "breakend",
    "missing": "ALT '.' (no alternative allele)",
    "no_change": "ALT equal to REF",
    "ambiguous": "ALT with an ambiguity code (N, R, Y, ...): not one sequence to score",
}


@dataclass
class ScoreOptions:
    window: int = 8192
    reverse_complement: bool = True  # mean of both strands
    circular: bool = False
    strict: bool = False
    batch_size: int | None = None  # None: engine.default_batch_size (1 on CPU, more on GPU)
    prefix_reuse: bool = True  # False: two full windows per allele (the naive method)
    downstream: int | None = None  # opt-in: sum only N nt after each change (engine)
    precision: str = "fp32"  # opt-in: "bf16"
    genome_stream: bool = False  # opt-in: left contexts from one pass per stretch (engine)
    workers: int = 1  # CPU worker processes
    upstream: int = DEFAULT_UPSTREAM  # with an annotation: nt before a gene start = upstream
    genetic_code: int | None = None  # with an annotation: None = its transl_table, else 11

    @property
    def summed_downstream(self) -> int | None:
        """The nt summed after each change: --downstream, with --genome-stream window // 2
        when not given (None: the whole window)."""
        if self.genome_stream and self.downstream is None:
            return self.window // 2
        return self.downstream

    def check(self) -> None:
        if self.window < 2:
            raise DnahnetError(f"--window {self.window}: must be at least 2")
        if self.batch_size is not None and self.batch_size < 1:
            raise DnahnetError(f"--batch-size {self.batch_size}: must be >= 1")
        if self.upstream < 0:
            raise DnahnetError(f"--upstream {self.upstream}: must be >= 0")
        if self.genetic_code is not None:
            check_genetic_code(self.genetic_code, "--genetic-code")


@dataclass
class Summary:
    records: int = 0
    alleles: int = 0
    scored: int = 0
    skipped: Counter = field(default_factory=Counter)
    ref_mismatches: int = 0
    clipped: int = 0
    wrapped: int = 0
    long_alleles: int = 0  # records scored at the left breakpoint (LONG_ALLELE)
    annotated: bool = False  # consequences were computed (--annotation)
    llr_by_consequence: dict[str, list[float]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"records: {self.records}, ALT alleles: {self.alleles}, scored: {self.scored}"]
        if self.skipped:
            reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items()))
            out.append(f"skipped alleles: {sum(self.skipped.values())} ({reasons})")
        else:
            out.append("skipped alleles: 0")
        out.append(f"REF mismatches with the FASTA: {self.ref_mismatches} records")
        if self.clipped:
            out.append(f"windows clipped at a contig end: {self.clipped} records")
        if self.wrapped:
            out.append(f"windows wrapped around a circular contig: {self.wrapped} records")
        if self.long_alleles:
            out.append(
                f"alleles longer than the window, scored at the left breakpoint (LONG_ALLELE): "
                f"{self.long_alleles} records"
            )
        if self.annotated:
            out += consequence_summary(self.llr_by_consequence)
        return out


@dataclass
class PlannedRecord:
    """A record ready to score: its flags and, per ALT, where its window is in its Site."""

    record: VcfRecord
    flags: list[str] = field(default_factory=list)  # REF_MISMATCH, CLIPPED, WRAPPED
    slots: list[int | str] = field(default_factory=list)  # per ALT: index in site, or skip reason
    site: int = -1  # index of its Site in the chunk


@dataclass
class PlannedWindows:
    """The windows of one record's alleles and where each holds its change."""

    key: tuple | None = None  # records with equal keys share one reference window
    reference: np.ndarray | None = None
    alternatives: list[np.ndarray] = field(default_factory=list)
    changed: list[tuple[int, int]] = field(default_factory=list)  # reference, then each ALT


@dataclass(frozen=True)
class AlleleScore:
    llr: float  # mean of the strands (the forward strand alone without reverse_complement)
    forward: float
    reverse: float | None


@dataclass
class ScoredRecord:
    """The result of one record: per ALT its scores or the reason it was not scored."""

    record: VcfRecord
    flags: list[str]
    alleles: list[AlleleScore | str]
    consequences: list[Consequence | None] = field(default_factory=list)  # per ALT, or []


def _ref_matches(vcf_ref: str, fasta_ref: str) -> bool:
    return all(a == b or "N" in (a, b) for a, b in zip(vcf_ref, fasta_ref, strict=True))


def _skip_reason(kind: str, alt: str, ref: str) -> str:
    if kind != BASES:
        return kind
    if alt.upper() == ref:
        return "no_change"
    if set(alt.upper()) - set("ACGT"):
        return "ambiguous"
    return ""


def plan_record(
    record: VcfRecord,
    genome: Genome,
    options: ScoreOptions,
    contig_names: list[str],
    summary: Summary,
) -> tuple[PlannedRecord, PlannedWindows]:
    """Flags and slots of one record, and the windows of its alleles (no key: nothing to
    score). An allele longer than the window is scored at the left breakpoint: both
    windows ``window`` nt from ``window // 2`` before POS (flag LONG_ALLELE)."""
    planned = PlannedRecord(record)
    alts = record.alts or ["."]
    kinds = [allele_kind(a) for a in alts]
    ref = record.ref
    if all(_skip_reason(k, a, ref) for k, a in zip(kinds, alts, strict=True)):
        planned.slots = [_skip_reason(k, a, ref) for k, a in zip(kinds, alts, strict=True)]
        return planned, PlannedWindows()
    contig = genome.contig_of(record.chrom, where=record.where, query_names=contig_names)
    tokens = genome.tokens(contig)
    start, end = record.pos - 1, record.pos - 1 + len(ref)
    if end > len(tokens):
        raise DnahnetError(
            f"{record.where}: {record.chrom}:{record.pos} REF {ref} extends beyond the end of "
            f"{contig} (length {len(tokens)})"
        )
    fasta_ref = genome.sequence(contig)[start:end]
    if not _ref_matches(ref, fasta_ref):
        if options.strict:
            raise DnahnetError(
                f"{record.where}: REF {ref} does not match the reference ({fasta_ref}) at "
                f"{contig}:{record.pos} (--strict)"
            )
        planned.flags.append("REF_MISMATCH")
        summary.ref_mismatches += 1
    scored_alts = [a for k, a in zip(kinds, alts, strict=True) if not _skip_reason(k, a, ref)]
    if max(len(ref), *map(len, scored_alts)) > options.window:
        window = breakpoint_window(len(tokens), start, options.window, circular=options.circular)
        planned.flags.append("LONG_ALLELE")
        summary.long_alleles += 1
    else:
        window = centred_window(
            len(tokens), start, end, options.window, circular=options.circular
        )
    if window.clipped:
        planned.flags.append("CLIPPED")
        summary.clipped += 1
    if window.wrapped:
        planned.flags.append("WRAPPED")
        summary.wrapped += 1
    if "REF_MISMATCH" in planned.flags:  # score the alleles the record names: splice its REF in
        reference = substituted_window(tokens, window, start, end, encode(ref, where=record.where))
    else:
        reference = window_tokens(tokens, window)
    at = window_offset(window, start)
    windows = PlannedWindows(
        (contig, window.start, window.end, ref), reference, [],
        [(at, min(len(reference), at + len(ref)))],
    )
    for kind, alt in zip(kinds, alts, strict=True):
        reason = _skip_reason(kind, alt, ref)
        if reason:
            planned.slots.append(reason)
            continue
        planned.slots.append(len(windows.alternatives))
        allele = substituted_window(tokens, window, start, end, encode(alt, where=record.where))
        windows.alternatives.append(allele)
        windows.changed.append((at, min(len(allele), at + len(alt))))
    return planned, windows


def plan_chunks(
    reader: VcfReader, genome: Genome, options: ScoreOptions, summary: Summary, chunk_sites: int
) -> Iterator[tuple[list[PlannedRecord], list[Site]]]:
    """Planned records and their Sites; consecutive records with one REF window share a Site."""
    contig_names = reader.header_contigs
    planned: list[PlannedRecord] = []
    sites: list[Site] = []
    last_key = None
    for record in reader:
        item, windows = plan_record(
            record, genome, options, contig_names or [record.chrom], summary
        )
        key = windows.key
        if key is not None:
            if key == last_key and sites:
                offset = len(sites[-1].alternatives)
                sites[-1].alternatives.extend(windows.alternatives)
                sites[-1].changed.extend(windows.changed[1:])
                item.slots = [s + offset if isinstance(s, int) else s for s in item.slots]
            else:
                if len(sites) >= chunk_sites:
                    yield planned, sites
                    planned, sites = [], []
                sites.append(
                    Site(windows.reference, windows.alternatives, changed=windows.changed)
                )
                last_key = key
            item.site = len(sites) - 1
        planned.append(item)
        if key is None and len(planned) >= 16 * chunk_sites:  # long runs of unscored records
            yield planned, sites
            planned, sites = [], []
    if planned:
        yield planned, sites


def score_chunk(
    planned: list[PlannedRecord], scores: Sequence[SiteScore], summary: Summary
) -> list[ScoredRecord]:
    """The engine's site scores as one ScoredRecord per planned record."""
    results = []
    for item in planned:
        summary.records += 1
        summary.alleles += len(item.record.alts or ["."])
        alleles: list[AlleleScore | str] = []
        for slot in item.slots:
            if isinstance(slot, str):
                summary.skipped[slot] += 1
                alleles.append(slot)
                continue
            summary.scored += 1
            score = scores[item.site]
            reverse = None if score.reverse is None else float(score.reverse[slot])
            alleles.append(
                AlleleScore(float(score.delta[slot]), float(score.forward[slot]), reverse)
            )
        results.append(ScoredRecord(item.record, item.flags, alleles))
    return results


# records the stream leaves to the windowed protocol (their windows are not plain slices)
WINDOWED_FLAGS = ("LONG_ALLELE", "REF_MISMATCH", "WRAPPED")


def stream_site_scores(
    planned: list[PlannedRecord],
    sites: list[Site],
    genome: Genome,
    contig_names: list[str],
    engine: Engine,
    options: ScoreOptions,
    pool: ModelWorkers,
) -> list[SiteScore]:
    """``--genome-stream``: the site scores of one planned step from
    ``engine.stream_substitutions``: along each contig every strand runs once per stretch
    of ``--window`` nt and each ALT continues from the reference state at POS over
    itself and ``--downstream`` nt after the REF span (default window // 2); LLR = that
    sum minus the reference's over its REF span and the same nt. Records flagged
    LONG_ALLELE, REF_MISMATCH or WRAPPED are scored with the windowed protocol (the
    engine) as without the option."""
    windowed = sorted({item.site for item in planned
                       if item.site >= 0 and any(f in WINDOWED_FLAGS for f in item.flags)})
    scores: list[SiteScore | None] = [None] * len(sites)
    for i, score in zip(windowed, engine.score(sites[i] for i in windowed), strict=True):
        scores[i] = score
    by_contig: dict[str, list[Substitution]] = {}
    for item in planned:
        if item.site < 0 or scores[item.site] is not None:
            continue
        record = item.record
        contig = genome.contig_of(record.chrom, where=record.where,
                                  query_names=contig_names or [record.chrom])
        for alt, slot in zip(record.alts, item.slots, strict=True):
            if isinstance(slot, int):
                by_contig.setdefault(contig, []).append(Substitution(
                    record.pos - 1, encode(alt, where=record.where), key=(item.site, slot),
                    length=len(record.ref),
                ))
    forward = {i: np.full(len(s.alternatives), np.nan) for i, s in enumerate(sites)}
    reverse = {i: np.full(len(s.alternatives), np.nan) for i, s in enumerate(sites)}
    for contig, substitutions in by_contig.items():
        for result in stream_substitutions(
            engine.model, genome.tokens(contig), substitutions, tile=options.window,
            downstream=options.summed_downstream,
            reverse_complement=options.reverse_complement, precision=options.precision,
            device=engine.device, workers=pool,
        ):
            site, slot = result.key
            forward[site][slot] = result.forward
            if result.reverse is not None:
                reverse[site][slot] = result.reverse
    return [
        score if score is not None else SiteScore(
            key=None, forward=forward[i],
            reverse=reverse[i] if options.reverse_complement else None,
            reference_ll=float("nan"), alternative_ll=np.full(len(sites[i].alternatives), np.nan),
        )
        for i, score in enumerate(scores)
    ]


def annotate_records(
    records: list[ScoredRecord],
    annotator: ConsequenceAnnotator | None,
    genome: Genome,
    contig_names: list[str],
    summary: Summary,
) -> None:
    """Each scored ALT's consequence on the genes (``--annotation``), and its LLR counted
    under that class in the summary; nothing without an annotator."""
    if annotator is None:
        return
    for scored in records:
        alts = [None if isinstance(a, str) else alt
                for a, alt in zip(scored.alleles, scored.record.alts or ["."], strict=True)]
        if not any(alts):
            continue
        record = scored.record
        contig = genome.contig_of(record.chrom, where=record.where,
                                  query_names=contig_names or [record.chrom])
        scored.consequences = annotator.annotate(contig, record.pos, record.ref, alts)
        for allele, consequence in zip(scored.alleles, scored.consequences, strict=True):
            if consequence is not None:
                summary.llr_by_consequence.setdefault(consequence.kind, []).append(allele.llr)


def score_vcf(
    vcf_path: str | os.PathLike,
    reference_path: str | os.PathLike,
    output: str | os.PathLike | None,
    model,
    *,
    options: ScoreOptions | None = None,
    device="auto",
    chrom_map: dict[str, str] | None = None,
    model_name: str = "",
    command_line: str = "",
    annotation: str | os.PathLike | None = None,
) -> Summary:
    """Score every record of a VCF/BCF and write a VCF (.vcf, .vcf.gz; stdout for None) or
    TSV. ``model`` is a loaded model or a ``ModelSource`` (loaded once the inputs are read).
    ``annotation`` (GFF3 or GenBank): add each ALT's gene and consequence."""
    options = options or ScoreOptions()
    options.check()
    if options.genetic_code is not None and annotation is None:
        raise DnahnetError("--genetic-code needs --annotation")
    output_kind(output)  # an unknown output format fails before any work
    reader = VcfReader(vcf_path)
    if not Path(reference_path).exists():
        raise DnahnetError(f"{reference_path}: no such file")
    genome = Genome.read(reference_path, chrom_map=chrom_map, query_label=str(vcf_path))
    annotator = None
    if annotation is not None:
        annotated = load_annotated_genome(reference_path, annotation, chrom_map=chrom_map)
        annotator = ConsequenceAnnotator(
            annotated, upstream=options.upstream, genetic_code=options.genetic_code,
            circular=options.circular,
        )
    if not model_name and isinstance(model, ModelSource):
        model_name = model.name
    check_scoring_options(
        device, precision=options.precision, workers=options.workers,
        downstream=options.downstream,
    )
    # a first pass plans every record, so that a bad one fails before anything is written
    # (and counts them for the progress bar, in a BCF too)
    total = sum(len(planned) for planned, _ in plan_chunks(VcfReader(vcf_path), genome, options,
                                                            Summary(), chunk_sites=1))
    network, device = ready_model(model, device)
    summary = Summary(annotated=annotator is not None)
    header = ScoringHeader(
        options.window, options.reverse_complement, options.circular, model_name, command_line,
        annotation=str(annotation) if annotation is not None else "",
        upstream=options.upstream,
        genetic_code=annotator.code_source if annotator is not None else "",
        consequence_classes=CONSEQUENCES, downstream=options.summed_downstream,
        precision=options.precision, genome_stream=options.genome_stream,
    )
    with (
        ModelWorkers(network, options.workers) as pool,
        Engine(
            network, device, batch_size=options.batch_size,
            reverse_complement=options.reverse_complement, prefix_reuse=options.prefix_reuse,
            downstream=options.downstream, precision=options.precision, workers=pool,
        ) as engine,
        counter("variants", "scoring variants", total, rate=per_second("variants")) as advance,
        scored_variant_output(output, reader.header_lines, header) as write,
    ):
        # records planned per step; a stream shares its left contexts within a step only
        chunk_sites = (8 if options.genome_stream else 2) * engine.chunk_sites * options.workers
        for planned, sites in plan_chunks(reader, genome, options, summary, chunk_sites):
            if options.genome_stream:
                scores = stream_site_scores(planned, sites, genome, reader.header_contigs,
                                            engine, options, pool)
            else:
                scores = list(engine.score(sites))
            scored = score_chunk(planned, scores, summary)
            annotate_records(scored, annotator, genome, reader.header_contigs, summary)
            write(scored)
            advance(len(planned))
    return summary
