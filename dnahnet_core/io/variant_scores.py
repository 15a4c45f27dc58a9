"""Writers of scored variants (``dnahnet score-variants``): VCF with INFO fields, or TSV.

    with scored_variant_output(output, reader.header_lines, header) as write:
        write(scored_records)      # a list of tasks.variants.ScoredRecord, in input order

VCF (``.vcf``, ``.vcf.gz`` bgzipped + tabix-indexed, or stdout): every input header
line and record is kept; the INFO fields ``DNAHNET_LLR`` (one value per ALT, ``.`` for
an ALT not scored), ``DNAHNET_LLR_FWD``/``_REV`` (with strand averaging) and
``DNAHNET_FLAGS`` are added, replacing any from an earlier run; with an annotation also
``DNAHNET_GENE``, ``DNAHNET_CSQ`` and ``DNAHNET_AA`` (one value per ALT, ``.`` where there
is none). TSV (``.tsv``, ``.txt``): one row per ALT allele, ``NA`` where not scored (with
an annotation, the columns ``gene consequence protein_change`` too).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dnahnet_core import __version__
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import atomic_open
from dnahnet_core.io.vcf import vcf_output, with_header_lines

if TYPE_CHECKING:
    from dnahnet_core.tasks.variants import ScoredRecord

INFO_PREFIX = "DNAHNET_"


@dataclass(frozen=True)
class ScoringHeader:
    """What the output says about how it was scored (VCF header lines, TSV columns)."""

    window: int
    reverse_complement: bool
    circular: bool
    model_name: str = ""
    command_line: str = ""
    annotation: str = ""  # the annotation file of the consequences; "" = none
    upstream: int = 0
    genetic_code: str = ""  # where the genetic code came from (annotation, default, option)
    consequence_classes: tuple[str, ...] = ()  # most severe first
    downstream: int | None = None  # --downstream: nt summed after the change (None: all)
    precision: str = "fp32"
    genome_stream: bool = False  # --genome-stream: left contexts from one pass per stretch


def output_kind(output: str | os.PathLike | None) -> str:
    """'vcf' or 'tsv' from the output name (None or '-': VCF on stdout)."""
    if output is None or str(output) == "-":
        return "vcf"
    name = Path(output).name.lower()
    if name.endswith((".vcf", ".vcf.gz", ".vcf.bgz")):
        return "vcf"
    if name.endswith((".tsv", ".txt")):
        return "tsv"
    raise DnahnetError(f"{output}: unknown output format (use .vcf, .vcf.gz or .tsv)")


@contextlib.contextmanager
def scored_variant_output(
    output: str | os.PathLike | None, input_header: list[str], header: ScoringHeader
) -> Iterator[Callable[[list[ScoredRecord]], None]]:
    """Open the output (atomically) and yield ``write(records)``."""
    if output_kind(output) == "vcf":
        lines = with_header_lines(
            input_header, vcf_header_lines(header),
            drop_prefixes=(f"##INFO=<ID={INFO_PREFIX}", "##dnahnet_"),
        )
        with vcf_output(output) as handle:
            handle.write("\n".join(lines) + "\n")
            yield lambda records: handle.writelines(
                vcf_line(r, header.reverse_complement, bool(header.annotation)) + "\n"
                for r in records
            )
    else:
        annotated = bool(header.annotation)
        with atomic_open(output, "w") as handle:
            handle.write(tsv_header(header.reverse_complement, annotated))
            yield lambda records: handle.writelines(
                row for r in records
                for row in tsv_rows(r, header.reverse_complement, annotated)
            )


def vcf_header_lines(header: ScoringHeader) -> list[str]:
    w = header.window
    strands = (
        "mean of the forward and reverse-complement strands"
        if header.reverse_complement
        else "forward strand"
    )
    lines = [
        f"##INFO=<ID={INFO_PREFIX}LLR,Number=A,Type=Float,"
        'Description="dnaHNet log-likelihood ratio '
        f"log P(ALT window) - log P(REF window), summed over all positions of a {w}-nt window "
        f'centred on the REF allele ({strands}); negative = predicted deleterious">',
    ]
    if header.reverse_complement:
        for tag, name in (("FWD", "forward strand"), ("REV", "reverse-complement strand")):
            lines.append(
                f'##INFO=<ID={INFO_PREFIX}LLR_{tag},Number=A,Type=Float,Description="dnaHNet '
                f'log-likelihood ratio on the {name} alone">'
            )
    lines += [
        f'##INFO=<ID={INFO_PREFIX}FLAGS,Number=.,Type=String,Description="dnaHNet notes: '
        "REF_MISMATCH (REF differs from the FASTA), CLIPPED (window cut at a contig end), "
        "WRAPPED (window wraps a circular contig), LONG_ALLELE (REF or ALT longer than the "
        "window: scored at the left breakpoint, windows starting half a window before POS), "
        "SKIPPED_<REASON> (an ALT not scored: "
        'SYMBOLIC, STAR, BREAKEND, MISSING, NO_CHANGE, AMBIGUOUS)">',
    ]
    if header.annotation:
        lines += _consequence_header_lines(header)
    lines += [
        f"##dnahnet_version={__version__}",
        f"##dnahnet_model={header.model_name}",
        f"##dnahnet_command={header.command_line}",
        f"##dnahnet_scoring=window={w};"
        f"reverse_complement={str(header.reverse_complement).lower()}"
        f";circular={str(header.circular).lower()}"
        f";downstream={'all' if header.downstream is None else header.downstream}"
        f";precision={header.precision}"
        f";genome_stream={str(header.genome_stream).lower()}",
    ]
    return lines


def _consequence_header_lines(header: ScoringHeader) -> list[str]:
    classes = ", ".join(header.consequence_classes)
    return [
        f'##INFO=<ID={INFO_PREFIX}GENE,Number=A,Type=String,Description="dnaHNet: locus tag '
        f"of the gene of {INFO_PREFIX}CSQ in {header.annotation} ('.' when intergenic)\">",
        f'##INFO=<ID={INFO_PREFIX}CSQ,Number=A,Type=String,Description="dnaHNet: consequence '
        f"of the ALT allele, the most severe over the genes it touches: {classes}"
        f" (upstream: within {header.upstream} nt before a gene start on its strand; genetic "
        f'code: {header.genetic_code})">',
        f'##INFO=<ID={INFO_PREFIX}AA,Number=A,Type=String,Description="dnaHNet: protein change '
        "of the codons touched: reference peptide, number of its first codon, alternative "
        "peptide (K12N, Q40*, K12fs; - for no codon; '.' outside coding sequences)\">",
    ]


def _consequence_cells(scored: ScoredRecord) -> tuple[list[str], list[str], list[str]]:
    """Per ALT: gene, consequence, protein change ('.' where there is none)."""
    found = scored.consequences or [None] * len(scored.alleles)
    gene = [_info_text(c.gene) if c else "." for c in found]
    kind = [c.kind if c else "." for c in found]
    protein = [_info_text(c.protein) if c else "." for c in found]
    return gene, kind, protein


def _info_text(text: str) -> str:
    """A value fit for one element of a Number=A INFO list ('.' when empty)."""
    return re.sub(r"[,;=\s]", "_", text) or "."


def _number(value: float) -> str:
    return f"{value:.4f}"


def _allele_cells(scored: ScoredRecord) -> tuple[list[str], list[str], list[str], list[str]]:
    """Per ALT: LLR, forward, reverse ('.' when not scored), and the record's flags with a
    SKIPPED_<REASON> per ALT not scored, in ALT order."""
    llr, forward, reverse, flags = [], [], [], list(scored.flags)
    for allele in scored.alleles:
        if isinstance(allele, str):
            flags.append(f"SKIPPED_{allele.upper()}")
            llr.append(".")
            forward.append(".")
            reverse.append(".")
            continue
        llr.append(_number(allele.llr))
        forward.append("." if allele.reverse is None else _number(allele.forward))
        reverse.append("." if allele.reverse is None else _number(allele.reverse))
    return llr, forward, reverse, flags


def vcf_line(scored: ScoredRecord, reverse_complement: bool, annotated: bool = False) -> str:
    """The input record with this run's INFO fields (earlier DNAHNET_ fields dropped)."""
    llr, forward, reverse, flags = _allele_cells(scored)
    updates = {}
    if any(v != "." for v in llr):
        updates[f"{INFO_PREFIX}LLR"] = ",".join(llr)
        if reverse_complement:
            updates[f"{INFO_PREFIX}LLR_FWD"] = ",".join(forward)
            updates[f"{INFO_PREFIX}LLR_REV"] = ",".join(reverse)
    if annotated and scored.consequences:
        gene, kind, protein = _consequence_cells(scored)
        updates[f"{INFO_PREFIX}GENE"] = ",".join(gene)
        updates[f"{INFO_PREFIX}CSQ"] = ",".join(kind)
        updates[f"{INFO_PREFIX}AA"] = ",".join(protein)
    if flags:
        updates[f"{INFO_PREFIX}FLAGS"] = ",".join(flags)
    return scored.record.line(updates, drop_prefix=INFO_PREFIX)


def tsv_header(reverse_complement: bool, annotated: bool = False) -> str:
    columns = ["chrom", "pos", "ref", "alt", "llr"]
    if reverse_complement:
        columns += ["llr_forward", "llr_reverse"]
    if annotated:
        columns += ["gene", "consequence", "protein_change"]
    return "\t".join(columns + ["flags"]) + "\n"


def _na(value: str) -> str:
    return "NA" if value == "." else value


def tsv_rows(scored: ScoredRecord, reverse_complement: bool, annotated: bool = False) -> list[str]:
    """One row per ALT allele: its scores (and consequence) and the record's flags (plus its
    own skip reason)."""
    llr, forward, reverse, _ = _allele_cells(scored)
    gene, kind, protein = _consequence_cells(scored)
    record = scored.record
    rows = []
    for i, alt in enumerate(record.alts or ["."]):
        allele = scored.alleles[i]
        skip = [f"SKIPPED_{allele.upper()}"] if isinstance(allele, str) else []
        cells = [record.chrom, str(record.pos), record.ref, alt, _na(llr[i])]
        if reverse_complement:
            cells += [_na(forward[i]), _na(reverse[i])]
        if annotated:
            cells += [_na(gene[i]), _na(kind[i]), _na(protein[i])]
        cells.append(",".join(list(scored.flags) + skip) or ".")
        rows.append("\t".join(cells) + "\n")
    return rows
