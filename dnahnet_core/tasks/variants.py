"""Score VCF variants with the likelihood engine (``dnahnet score-variants``).

For each ALT allele: LLR = log P(ALT window) - log P(REF window), where each total is
the sum of log P(x_t | x_<t) over every position of a ``window``-nt window centred on
the REF span. The ALT window starts at the same base and has the same length: the ALT
allele replaces the REF span and the right edge moves (insertions push bases out,
deletions pull bases in). Positions before the variant have identical log-probabilities
in both windows, so they cancel exactly; the engine computes them once (prefix reuse).
With reverse-complement averaging the same is done on both windows reverse-complemented
and the LLR is the mean of the two strands. Negative = predicted deleterious.
See docs/score-variants.md.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnahnet_core import __version__
from dnahnet_core.alphabet import encode
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import atomic_open
from dnahnet_core.io.contigs import ContigMatcher
from dnahnet_core.io.fasta import load_genome, open_binary, open_text
from dnahnet_core.io.vcf import (
    BASES,
    VcfReader,
    VcfRecord,
    allele_kind,
    vcf_output,
    with_header_lines,
)
from dnahnet_core.tasks.engine import Engine, Site
from dnahnet_core.tasks.windows import centred_window, substituted_window, window_tokens

INFO_PREFIX = "DNAHNET_"
SKIP_REASONS = {
    "symbolic": "symbolic allele (<DEL>, <INS>, ...)",
    "star": "'*' (allele missing due to an overlapping deletion)",
    "breakend": "breakend",
    "missing": "ALT '.' (no alternative allele)",
    "no_change": "ALT equal to REF",
}


@dataclass
class ScoreOptions:
    window: int = 8192
    reverse_complement: bool = True
    circular: bool = False
    strict: bool = False
    batch_size: int = 16
    naive: bool = False  # two full windows per allele (the reference method)


@dataclass
class Summary:
    records: int = 0
    alleles: int = 0
    scored: int = 0
    skipped: Counter = field(default_factory=Counter)
    ref_mismatches: int = 0
    clipped: int = 0
    wrapped: int = 0

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
        return out


@dataclass
class _Planned:
    record: VcfRecord
    contig: str = ""
    flags: list[str] = field(default_factory=list)
    slots: list[int | str] = field(default_factory=list)  # per ALT: index in site, or skip reason
    site: int = -1  # index of its Site in the chunk


class _Genome:
    def __init__(self, path: Path, chrom_map: dict[str, str] | None, vcf_label: str):
        self.path = path
        self.sequences = load_genome(path)
        self.matcher = ContigMatcher(
            self.sequences, chrom_map, reference_label=str(path), query_label=vcf_label
        )
        self._tokens: dict[str, np.ndarray] = {}

    def tokens(self, name: str) -> np.ndarray:
        if name not in self._tokens:
            self._tokens[name] = encode(self.sequences[name], where=f"{self.path}: {name}")
        return self._tokens[name]


def _ref_matches(vcf_ref: str, fasta_ref: str) -> bool:
    return all(a == b or "N" in (a, b) for a, b in zip(vcf_ref, fasta_ref, strict=True))


def _plan(
    record: VcfRecord,
    genome: _Genome,
    options: ScoreOptions,
    contig_names: list[str],
    summary: Summary,
) -> tuple[_Planned, tuple | None, np.ndarray | None, list[np.ndarray]]:
    """Flags, the reference-window key and tokens, and the ALT windows of one record."""
    planned = _Planned(record)
    alts = record.alts or ["."]
    kinds = [allele_kind(a) for a in alts]
    ref = record.ref
    if not any(k == BASES and a.upper() != ref for k, a in zip(kinds, alts, strict=True)):
        planned.slots = [_skip_reason(k, a, ref) for k, a in zip(kinds, alts, strict=True)]
        return planned, None, None, []
    contig = genome.matcher.require(record.chrom, where=record.where, query_names=contig_names)
    planned.contig = contig
    tokens = genome.tokens(contig)
    start, end = record.pos - 1, record.pos - 1 + len(ref)
    if end > len(tokens):
        raise DnahnetError(
            f"{record.where}: {record.chrom}:{record.pos} REF {ref} extends beyond the end of "
            f"{contig} (length {len(tokens)})"
        )
    fasta_ref = genome.sequences[contig][start:end]
    if not _ref_matches(ref, fasta_ref):
        if options.strict:
            raise DnahnetError(
                f"{record.where}: REF {ref} does not match the reference ({fasta_ref}) at "
                f"{contig}:{record.pos} (--strict)"
            )
        planned.flags.append("REF_MISMATCH")
        summary.ref_mismatches += 1
    window = centred_window(len(tokens), start, end, options.window, circular=options.circular)
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
    windows = []
    for kind, alt in zip(kinds, alts, strict=True):
        reason = _skip_reason(kind, alt, ref)
        if reason:
            planned.slots.append(reason)
            continue
        planned.slots.append(len(windows))
        windows.append(
            substituted_window(tokens, window, start, end, encode(alt, where=record.where))
        )
    key = (contig, window.start, window.end, ref)
    return planned, key, reference, windows


def _skip_reason(kind: str, alt: str, ref: str) -> str:
    if kind != BASES:
        return kind
    if alt.upper() == ref:
        return "no_change"
    return ""


def _chunks(
    reader: VcfReader, genome: _Genome, options: ScoreOptions, summary: Summary, chunk_sites: int
) -> Iterator[tuple[list[_Planned], list[Site]]]:
    """Planned records and their Sites; consecutive records with one REF window share a Site."""
    contig_names = reader.header_contigs
    planned: list[_Planned] = []
    sites: list[Site] = []
    last_key = None
    for record in reader:
        item, key, reference, windows = _plan(
            record, genome, options, contig_names or [record.chrom], summary
        )
        if key is not None:
            if key == last_key and sites:
                offset = len(sites[-1].alternatives)
                sites[-1].alternatives.extend(windows)
                item.slots = [s + offset if isinstance(s, int) else s for s in item.slots]
            else:
                if len(sites) >= chunk_sites:
                    yield planned, sites
                    planned, sites = [], []
                sites.append(Site(reference, list(windows)))
                last_key = key
            item.site = len(sites) - 1
        planned.append(item)
        if key is None and len(planned) >= 16 * chunk_sites:  # long runs of unscored records
            yield planned, sites
            planned, sites = [], []
    if planned:
        yield planned, sites


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _header(options: ScoreOptions, model_name: str, command_line: str) -> list[str]:
    w = options.window
    strands = (
        "mean of the forward and reverse-complement strands"
        if options.reverse_complement
        else "forward strand"
    )
    lines = [
        f"##INFO=<ID={INFO_PREFIX}LLR,Number=A,Type=Float,"
        'Description="dnaHNet log-likelihood ratio '
        f"log P(ALT window) - log P(REF window), summed over all positions of a {w}-nt window "
        f'centred on the REF allele ({strands}); negative = predicted deleterious">',
    ]
    if options.reverse_complement:
        for tag, name in (("FWD", "forward strand"), ("REV", "reverse-complement strand")):
            lines.append(
                f'##INFO=<ID={INFO_PREFIX}LLR_{tag},Number=A,Type=Float,Description="dnaHNet '
                f'log-likelihood ratio on the {name} alone">'
            )
    lines += [
        f'##INFO=<ID={INFO_PREFIX}FLAGS,Number=.,Type=String,Description="dnaHNet notes: '
        "REF_MISMATCH (REF differs from the FASTA), CLIPPED (window cut at a contig end), "
        "WRAPPED (window wraps a circular contig), SKIPPED_<REASON> (an ALT not scored: "
        'SYMBOLIC, STAR, BREAKEND, MISSING, NO_CHANGE)">',
        f"##dnahnet_version={__version__}",
        f"##dnahnet_model={model_name}",
        f"##dnahnet_command={command_line}",
        f"##dnahnet_scoring=window={w};reverse_complement={str(options.reverse_complement).lower()}"
        f";circular={str(options.circular).lower()}",
    ]
    return lines


def _output_kind(output: str | os.PathLike | None) -> str:
    if output is None or str(output) == "-":
        return "vcf"
    name = Path(output).name.lower()
    if name.endswith((".vcf", ".vcf.gz", ".vcf.bgz")):
        return "vcf"
    if name.endswith((".tsv", ".txt")):
        return "tsv"
    raise DnahnetError(f"{output}: unknown output format (use .vcf, .vcf.gz or .tsv)")


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
    on_progress: Callable[[int], None] | None = None,
) -> Summary:
    """Score every record of a VCF/BCF and write a VCF (.vcf, .vcf.gz) or TSV."""
    options = options or ScoreOptions()
    if options.window < 2:
        raise DnahnetError(f"--window {options.window}: must be at least 2")
    kind = _output_kind(output)
    reader = VcfReader(vcf_path)
    genome = _Genome(Path(reference_path), chrom_map, str(vcf_path))
    engine = Engine(
        model,
        device,
        batch_size=options.batch_size,
        reverse_complement=options.reverse_complement,
        naive=options.naive,
    )
    summary = Summary()
    chunk_sites = max(64, 4 * options.batch_size)
    stream = _chunks(reader, genome, options, summary, chunk_sites)
    if kind == "vcf":
        header = with_header_lines(
            reader.header_lines,
            _header(options, model_name, command_line),
            drop_prefixes=(f"##INFO=<ID={INFO_PREFIX}", "##dnahnet_"),
        )
        with vcf_output(output) as handle:
            handle.write("\n".join(header) + "\n")
            for lines in _scored_lines(stream, engine, summary, options, "vcf", on_progress):
                handle.writelines(lines)
    else:
        with atomic_open(output, "w") as handle:
            columns = ["chrom", "pos", "ref", "alt", "llr"]
            if options.reverse_complement:
                columns += ["llr_forward", "llr_reverse"]
            handle.write("\t".join(columns + ["flags"]) + "\n")
            for lines in _scored_lines(stream, engine, summary, options, "tsv", on_progress):
                handle.writelines(lines)
    return summary


def _scored_lines(
    stream, engine: Engine, summary: Summary, options: ScoreOptions, kind: str, on_progress
) -> Iterator[list[str]]:
    for planned, sites in stream:
        scores = list(engine.score(sites))
        lines = []
        for item in planned:
            summary.records += 1
            alts = item.record.alts or ["."]
            summary.alleles += len(alts)
            values: dict[str, list[str]] = {"LLR": [], "LLR_FWD": [], "LLR_REV": []}
            flags = list(item.flags)
            for slot in item.slots:
                if isinstance(slot, str):
                    summary.skipped[slot] += 1
                    flags.append(f"SKIPPED_{slot.upper()}")
                    for v in values.values():
                        v.append(".")
                    continue
                summary.scored += 1
                score = scores[item.site]
                values["LLR"].append(_fmt(score.delta[slot]))
                if score.reverse is not None:
                    values["LLR_FWD"].append(_fmt(score.forward[slot]))
                    values["LLR_REV"].append(_fmt(score.reverse[slot]))
            if kind == "vcf":
                lines.append(_vcf_line(item, values, flags, options) + "\n")
            else:
                lines.extend(_tsv_rows(item, alts, values, flags, options))
        if on_progress is not None:
            on_progress(len(planned))
        yield lines


def _vcf_line(
    item: _Planned, values: dict[str, list[str]], flags: list[str], options: ScoreOptions
) -> str:
    updates = {}
    if any(v != "." for v in values["LLR"]):
        updates[f"{INFO_PREFIX}LLR"] = ",".join(values["LLR"])
        if options.reverse_complement:
            updates[f"{INFO_PREFIX}LLR_FWD"] = ",".join(values["LLR_FWD"])
            updates[f"{INFO_PREFIX}LLR_REV"] = ",".join(values["LLR_REV"])
    if flags:
        updates[f"{INFO_PREFIX}FLAGS"] = ",".join(flags)
    return item.record.line(updates, drop_prefix=INFO_PREFIX)


def _tsv_rows(
    item: _Planned,
    alts: list[str],
    values: dict[str, list[str]],
    flags: list[str],
    options: ScoreOptions,
) -> list[str]:
    record_flags = [f for f in flags if not f.startswith("SKIPPED_")]
    rows = []
    for i, alt in enumerate(alts):
        slot = item.slots[i]
        row_flags = record_flags + ([f"SKIPPED_{slot.upper()}"] if isinstance(slot, str) else [])
        cells = [
            item.record.chrom,
            str(item.record.pos),
            item.record.ref,
            alt,
            _na(values["LLR"][i]),
        ]
        if options.reverse_complement:
            cells += [_na(values["LLR_FWD"][i]), _na(values["LLR_REV"][i])]
        cells.append(",".join(row_flags) or ".")
        rows.append("\t".join(cells) + "\n")
    return rows


def _na(value: str) -> str:
    return "NA" if value == "." else value


def count_records(path: str | os.PathLike) -> int | None:
    """Number of data lines of a text VCF (a progress total); None for BCF or unreadable."""
    try:
        with open_binary(path) as handle:
            if handle.read(3) == b"BCF":
                return None
        with open_text(path) as handle:
            return sum(1 for line in handle if line.strip() and not line.startswith("#"))
    except (OSError, EOFError):
        return None
