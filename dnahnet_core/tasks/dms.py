"""Deep mutational scanning (MaveDB score sets) scored in genomic context (``score-dms``).

Input: a MaveDB score-set CSV (lines starting with '#' are skipped) with a ``score``
column and ``hgvs_nt`` and/or ``hgvs_pro``; a FASTA holding the context (one record)
and the CDS inside it, ``START-END[:STRAND]`` (1-based, closed; ``-`` for a CDS on the
reverse strand).

Variants understood (anything else is counted by reason, never fatal):

* ``hgvs_nt`` (used when present): ``c.12A>G``, ``c.[12A>G;13C>T]``, ``c.12_14delinsTTA``
  (same length), with ``c.`` numbered from the A of the start codon on the CDS strand;
  ``g.``/``n.`` numbered along the context record instead;
* ``hgvs_pro`` single substitutions: ``p.Ala4Gly``, ``p.(Ala4Gly)``, ``p.A4G``, stops as
  ``Ter`` or ``*``. The amino-acid change is mapped to the codon(s) that need the fewest
  nucleotide changes from the reference codon; when several codons tie, each is scored
  and their LLRs are averaged. The reference amino acid must match the translation
  (genetic code 11, the standard codons; ``genetic_code=4`` reads TGA as Trp).

Score of a variant: LLR = log P(mutant window) - log P(reference window), the window of
``window`` nt centred on the changed span and cut at the ends of the context (the same
definition as score-variants, docs/score-variants.md). Correlations with the experimental
scores: Spearman (ranks, ties averaged) and Pearson, over variants with both values.

Plan: ``io.mavedb`` reads the score set, ``plan_variants`` turns each row into
nucleotide changes (``DmsVariant``). Engine: one ``Site`` per changed span, its
alternatives the variants' windows (``tasks.windows``). Results: each DmsVariant gets
its LLRs. Writer: ``io.tsv.write_dms_table``.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dnahnet_core.alphabet import encode, reverse_complement
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io import tsv
from dnahnet_core.io.genome import Genome
from dnahnet_core.io.mavedb import read_score_table, row_line_numbers
from dnahnet_core.model_source import ModelSource, ready_model
from dnahnet_core.progress import counter
from dnahnet_core.tasks.engine import Engine, Site
from dnahnet_core.tasks.windows import centred_window, substituted_window, window_tokens

_BASES = "TCAG"
_AMINO = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
CODON_TABLE = {
    a + b + c: _AMINO[16 * i + 4 * j + k]
    for i, a in enumerate(_BASES)
    for j, b in enumerate(_BASES)
    for k, c in enumerate(_BASES)
}
# translation table 4 (Mycoplasma, Spiroplasma): TGA is Trp instead of a stop
CODON_TABLES = {11: CODON_TABLE, 4: {**CODON_TABLE, "TGA": "W"}}
THREE_LETTER = {
    "Ala": "A", "Arg": "R", "Asn": "N", "Asp": "D", "Cys": "C", "Gln": "Q", "Glu": "E",
    "Gly": "G", "His": "H", "Ile": "I", "Leu": "L", "Lys": "K", "Met": "M", "Phe": "F",
    "Pro": "P", "Ser": "S", "Thr": "T", "Trp": "W", "Tyr": "Y", "Val": "V", "Ter": "*",
}  # fmt: skip
_AA = r"(?:[A-Z][a-z]{2}|[ACDEFGHIKLMNPQRSTVWY*])"
_PRO = re.compile(rf"^p\.\(?({_AA})(\d+)({_AA}|=)\)?$")
_SUB = re.compile(r"^(\d+)([ACGT])>([ACGT])$")
_DELINS = re.compile(r"^(\d+)_(\d+)delins([ACGT]+)$")
_NT = re.compile(r"^([cgn])\.(.+)$")


@dataclass
class Cds:
    start: int  # 0-based, in the context record
    end: int  # exclusive
    strand: str  # "+" or "-"

    @property
    def length(self) -> int:
        return self.end - self.start

    def to_context(self, c_pos: int) -> int:
        """0-based context position of 1-based CDS position ``c_pos``."""
        return self.start + c_pos - 1 if self.strand == "+" else self.end - c_pos


def parse_cds(text: str, context_length: int) -> Cds:
    match = re.fullmatch(r"(\d+)-(\d+)(?::([+-]))?", text.strip())
    if not match:
        raise DnahnetError(f"--cds {text!r}: expected START-END[:STRAND], e.g. 101-1300:+")
    start, end = int(match.group(1)), int(match.group(2))
    if not 1 <= start < end <= context_length:
        raise DnahnetError(
            f"--cds {text}: must satisfy 1 <= START < END <= {context_length} (context length)"
        )
    if (end - start + 1) % 3:
        raise DnahnetError(f"--cds {text}: length {end - start + 1} is not a multiple of 3")
    return Cds(start - 1, end, match.group(3) or "+")


def load_context(path: str | os.PathLike) -> tuple[str, Genome]:
    """The one record of the context FASTA: its id, and the genome holding it."""
    if not Path(path).exists():
        raise DnahnetError(f"{path}: no such file")
    genome = Genome.read(path)
    if len(genome.names) != 1:
        raise DnahnetError(
            f"{path}: expected one FASTA record (the context of the CDS), found {len(genome.names)}"
        )
    return genome.names[0], genome


@dataclass
class DmsVariant:
    """One row of the score set: its nucleotide changes, then its scores."""

    line: int
    hgvs: str
    score: float
    # alternatives: each a list of (0-based context position, new base on the + strand)
    alternatives: list[list[tuple[int, str]]] = field(default_factory=list)
    status: str = "ok"
    llr: float = math.nan
    llr_forward: float = math.nan
    llr_reverse: float = math.nan


class _Skip(Exception):
    """A variant that cannot be scored; the message is the reason."""


def _coding_base(seq: str, cds: Cds, c_pos: int) -> str:
    base = seq[cds.to_context(c_pos)]
    return base if cds.strand == "+" else reverse_complement(base)


def _to_forward(cds: Cds, base: str) -> str:
    return base if cds.strand == "+" else reverse_complement(base)


def parse_nt(hgvs: str, seq: str, cds: Cds) -> list[tuple[int, str]]:
    if hgvs in ("_wt", "_sy"):
        raise _Skip("no change")
    match = _NT.match(hgvs)
    if not match:
        raise _Skip("not HGVS nucleotide notation")
    system, body = match.groups()
    if body == "=":
        raise _Skip("no change")
    parts = body[1:-1].split(";") if body.startswith("[") and body.endswith("]") else [body]
    changes: list[tuple[int, str]] = []
    for part in parts:
        sub, delins = _SUB.match(part), _DELINS.match(part)
        if sub:
            first, refs, alts = int(sub.group(1)), sub.group(2), sub.group(3)
        elif delins:
            first, last, alts = int(delins.group(1)), int(delins.group(2)), delins.group(3)
            if last - first + 1 != len(alts):
                raise _Skip("length-changing delins")
            refs = None
        else:
            raise _Skip("unsupported HGVS nucleotide change")
        for offset, alt in enumerate(alts):
            pos = first + offset
            if system == "c":
                if not 1 <= pos <= cds.length:
                    raise _Skip("position outside the CDS")
                ref = _coding_base(seq, cds, pos)
                where, new = cds.to_context(pos), _to_forward(cds, alt)
            else:
                if not 1 <= pos <= len(seq):
                    raise _Skip("position outside the context")
                ref, where, new = seq[pos - 1], pos - 1, alt
            if refs is not None and ref != refs[offset]:
                raise _Skip("reference base mismatch")
            changes.append((where, new))
    if len({p for p, _ in changes}) != len(changes):
        raise _Skip("overlapping changes")
    return changes


def _amino(code: str) -> str:
    return THREE_LETTER.get(code, code)


def parse_pro(
    hgvs: str, seq: str, cds: Cds, table: dict[str, str] = CODON_TABLE
) -> list[list[tuple[int, str]]]:
    """The nearest codon(s) for a single amino-acid substitution, as nucleotide changes."""
    match = _PRO.match(hgvs)
    if not match:
        if hgvs.startswith("p.[") or ";" in hgvs:
            raise _Skip("multiple amino-acid changes")
        if hgvs in ("_wt", "_sy", "p.="):
            raise _Skip("no change")
        raise _Skip("unsupported HGVS protein change")
    ref_aa, number, alt = _amino(match.group(1)), int(match.group(2)), match.group(3)
    if alt == "=":
        raise _Skip("synonymous (codon unknown)")
    alt_aa = _amino(alt)
    if ref_aa not in table.values() or alt_aa not in table.values():
        raise _Skip("unknown amino acid")
    if not 1 <= number <= cds.length // 3:
        raise _Skip("codon outside the CDS")
    c_first = 3 * (number - 1) + 1
    codon = "".join(_coding_base(seq, cds, c_first + i) for i in range(3))
    if table.get(codon) != ref_aa:
        raise _Skip("reference amino acid mismatch")
    if alt_aa == ref_aa:
        raise _Skip("no change")
    candidates = [c for c, aa in table.items() if aa == alt_aa]
    distance = [sum(a != b for a, b in zip(c, codon, strict=True)) for c in candidates]
    best = min(distance)
    return [
        [
            (cds.to_context(c_first + i), _to_forward(cds, candidate[i]))
            for i in range(3)
            if candidate[i] != codon[i]
        ]
        for candidate, d in zip(candidates, distance, strict=True)
        if d == best
    ]


def plan_variants(
    table: pd.DataFrame,
    seq: str,
    cds: Cds,
    score_column: str,
    lines: list[int],
    codons: dict[str, str] = CODON_TABLE,
) -> list[DmsVariant]:
    variants = []
    missing = ("", "NA", "None", "nan")
    for index, record in enumerate(table.to_dict("records")):
        nt, pro = record.get("hgvs_nt") or "", record.get("hgvs_pro") or ""
        use_nt = nt not in missing
        hgvs = nt if use_nt else pro
        try:
            score = float(record[score_column])
        except ValueError:
            score = math.nan
        line = lines[index] if index < len(lines) else index + 2
        variant = DmsVariant(line, hgvs, score)
        try:
            if hgvs in missing:
                raise _Skip("no HGVS")
            if use_nt:
                variant.alternatives = [parse_nt(hgvs, seq, cds)]
            else:
                variant.alternatives = parse_pro(hgvs, seq, cds, codons)
        except _Skip as reason:
            variant.status = str(reason)
        variants.append(variant)
    return variants


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return _pearson(pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy())


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


@dataclass
class DmsSummary:
    variants: int = 0
    scored: int = 0
    skipped: Counter = field(default_factory=Counter)
    correlated: int = 0
    spearman: float = math.nan
    pearson: float = math.nan

    def lines(self) -> list[str]:
        out = [f"variants: {self.variants}, scored: {self.scored}"]
        if self.skipped:
            reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.skipped.items()))
            out.append(f"not scored: {sum(self.skipped.values())} ({reasons})")
        out.append(
            f"correlation with experimental scores over {self.correlated} variants: "
            f"Spearman {self.spearman:.4f}, Pearson {self.pearson:.4f}"
        )
        return out


def score_dms(
    scores_csv: str | os.PathLike,
    sequence: str | os.PathLike,
    cds_text: str,
    output: str | os.PathLike,
    model: ModelSource | object,
    *,
    window: int = 8192,
    reverse_complement: bool = True,
    prefix_reuse: bool = True,
    score_column: str = "score",
    genetic_code: int = 11,
    batch_size: int = 16,
    device="auto",
) -> DmsSummary:
    """Score every variant of a MaveDB score set, write the table, correlate with its scores."""
    if batch_size < 1:
        raise DnahnetError(f"--batch-size {batch_size}: must be >= 1")
    scores_csv = Path(scores_csv)
    if not scores_csv.exists():
        raise DnahnetError(f"{scores_csv}: no such file")
    name, genome = load_context(sequence)
    seq = genome.sequence(name)
    cds = parse_cds(cds_text, len(seq))
    if genetic_code not in CODON_TABLES:
        raise DnahnetError(f"--genetic-code {genetic_code}: supported tables are 11 and 4")
    table = read_score_table(scores_csv, score_column)
    variants = plan_variants(
        table, seq, cds, score_column, row_line_numbers(scores_csv), CODON_TABLES[genetic_code]
    )
    sites, slots = _plan_sites(variants, genome.tokens(name), window)
    network, device = ready_model(model, device)
    with counter("sites", "scoring variants") as advance:
        engine = Engine(
            network, device, batch_size=batch_size, reverse_complement=reverse_complement,
            prefix_reuse=prefix_reuse, on_progress=advance,
        )
        results = {score.key[0]: score for score in engine.score(sites)}
    summary = DmsSummary(variants=len(variants))
    for i, variant in enumerate(variants):
        if variant.status != "ok":
            summary.skipped[variant.status] += 1
            continue
        span, indices = slots[i]
        result = results[span]
        variant.llr = float(np.mean(result.delta[indices]))
        if result.reverse is not None:
            variant.llr_forward = float(np.mean(result.forward[indices]))
            variant.llr_reverse = float(np.mean(result.reverse[indices]))
        summary.scored += 1
    both = [(v.llr, v.score) for v in variants if np.isfinite(v.llr) and np.isfinite(v.score)]
    summary.correlated = len(both)
    if both:
        x, y = np.array(both).T
        summary.spearman, summary.pearson = _spearman(x, y), _pearson(x, y)
    tsv.write_dms_table(output, variants, reverse_complement)
    return summary


def _plan_sites(variants: list[DmsVariant], tokens: np.ndarray, window: int):
    """One Site per changed span (its alternatives: every variant's windows there), and per
    variant index its span and the indices of its windows among the Site's alternatives."""
    sites: dict[tuple[int, int], Site] = {}
    slots: dict[int, tuple[tuple[int, int], list[int]]] = {}
    for i, variant in enumerate(variants):
        if variant.status != "ok":
            continue
        positions = [p for alt in variant.alternatives for p, _ in alt]
        span = (min(positions), max(positions) + 1)
        if span not in sites:
            win = centred_window(len(tokens), span[0], span[1], window)
            sites[span] = Site(window_tokens(tokens, win), [], key=(span, win))
        site = sites[span]
        indices = []
        for alt in variant.alternatives:
            replacement = tokens[span[0] : span[1]].copy()
            for pos, base in alt:
                replacement[pos - span[0]] = encode(base)[0]
            indices.append(len(site.alternatives))
            site.alternatives.append(
                substituted_window(tokens, site.key[1], span[0], span[1], replacement)
            )
        slots[i] = (span, indices)
    return list(sites.values()), slots
