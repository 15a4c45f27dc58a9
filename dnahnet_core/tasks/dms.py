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
definition as score-variants, docs/score-variants.md). Negative = predicted damaging.

Correlations with the experimental scores, per assay and macro-averaged over assays:
Spearman (ranks, ties averaged) and Pearson, over the variants with a finite LLR and a
finite experimental score (NaN, empty or NA scores are left out and counted). The
experimental scores are oriented first so that higher = fitter: an assay whose low
scores mean damaging (``damaging="low"``, the MaveDB convention for loss of function)
is used as is, one whose high scores mean damaging is negated. A positive Spearman then
always means agreement. Beside the model, on the same variants, the trivial baselines
of ``tasks.baselines`` oriented the same way: minus the number of amino-acid changes,
and BLOSUM62 on the variants with exactly one amino-acid change (with the model's
Spearman on that subset beside it). A sign check compares the experimental scores of
nonsense and synonymous variants where the assay has both.

Plan: ``io.mavedb`` reads the score set, ``plan_variants`` turns each row into
nucleotide changes and amino-acid changes (``DmsVariant``). Engine: one ``Site`` per
changed span, its alternatives the variants' windows (``tasks.windows``). Results: each
DmsVariant gets its LLRs; ``AssaySummary`` its correlations. Writer:
``io.tsv.write_dms_table``.
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
from dnahnet_core.io.atomic import check_outputs, display_path, output_group
from dnahnet_core.io.genome import Genome
from dnahnet_core.io.mavedb import read_score_table, row_line_numbers
from dnahnet_core.io.reports import write_json_report
from dnahnet_core.model_source import ModelSource, ready_model
from dnahnet_core.progress import counter, log
from dnahnet_core.tasks.baselines import DMS_BASELINES, dms_baselines, substitution_blosum62
from dnahnet_core.tasks.engine import Engine, Site, check_scoring_options
from dnahnet_core.tasks.genetic_code import GENETIC_CODES, check_genetic_code, codon_table
from dnahnet_core.tasks.windows import centred_window, substituted_window, window_tokens

CODON_TABLES = {code: codon_table(code) for code in GENETIC_CODES}
CODON_TABLE = CODON_TABLES[11]
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

    def to_cds(self, position: int) -> int | None:
        """1-based CDS position of 0-based context ``position`` (None outside the CDS)."""
        if not self.start <= position < self.end:
            return None
        return position - self.start + 1 if self.strand == "+" else self.end - position


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
    # (reference, alternative) amino acid of each codon changed; [] synonymous; None unknown
    protein_changes: list[tuple[str, str]] | None = None
    blosum62: float = math.nan  # of its one amino-acid change (baselines.substitution_blosum62)


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
    synonymous = ("_sy", "p.=")
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
        if variant.alternatives:
            variant.protein_changes = protein_changes(seq, cds, variant.alternatives[0], codons)
        elif hgvs in synonymous or variant.status.startswith("synonymous"):
            variant.protein_changes = []
        variant.blosum62 = substitution_blosum62(variant.protein_changes)
        variants.append(variant)
    return variants


def protein_changes(
    seq: str, cds: Cds, changes: list[tuple[int, str]], codons: dict[str, str] = CODON_TABLE
) -> list[tuple[str, str]]:
    """(reference, alternative) amino acid of every codon whose amino acid the nucleotide
    ``changes`` (context position, new base on the + strand) alter; bases outside the CDS
    change no codon. A codon with an N reads X."""
    by_codon: dict[int, dict[int, str]] = {}
    for position, base in changes:
        c_pos = cds.to_cds(position)
        if c_pos is not None:
            codon = by_codon.setdefault((c_pos - 1) // 3, {})
            codon[(c_pos - 1) % 3] = _to_forward(cds, base)  # the CDS strand's base
    out = []
    for number, new in sorted(by_codon.items()):
        ref = "".join(_coding_base(seq, cds, 3 * number + i + 1) for i in range(3))
        alt = "".join(new.get(i, ref[i]) for i in range(3))
        before, after = codons.get(ref, "X"), codons.get(alt, "X")
        if before != after:
            out.append((before, after))
    return out


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return _pearson(pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy())


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


DAMAGING = ("low", "high")


@dataclass(frozen=True)
class DmsAssay:
    """One score set to score: its CSV, the context FASTA, the CDS in it, and how to read it."""

    scores: Path
    sequence: Path
    cds: str
    name: str = ""  # in the table and the summary (default: the CSV's file name)
    score_column: str = "score"
    genetic_code: int = 11
    damaging: str = "low"  # which experimental scores mean damaging: "low" or "high"

    @property
    def label(self) -> str:
        name = Path(display_path(self.scores)).name  # <stdin> for -, not its copy
        return self.name or name.removesuffix(".gz").removesuffix(".csv")

    def check(self) -> None:
        check_genetic_code(self.genetic_code, f"{self.label}: --genetic-code")
        if self.damaging not in DAMAGING:
            raise DnahnetError(f"{self.label}: damaging must be low or high, not "
                               f"{self.damaging!r}")


def dms_assays(
    scores: str | os.PathLike | None,
    sequence: str | os.PathLike | None,
    cds: str | None,
    manifest: str | os.PathLike | None = None,
    *,
    score_column: str = "score",
    genetic_code: int = 11,
    damaging: str = "low",
) -> list[DmsAssay]:
    """The assays of the command line: one from ``scores``/``sequence``/``cds``, or those
    of a ``manifest`` (``io.mavedb.read_assay_manifest``; the keywords fill empty cells)."""
    from dnahnet_core.io.mavedb import read_assay_manifest

    single = (scores, sequence, cds)
    if manifest is not None:
        if any(x is not None for x in single):
            raise DnahnetError("give SCORES --sequence --cds or --manifest, not both")
        defaults = {"score_column": score_column, "genetic_code": genetic_code,
                    "damaging": damaging, "name": ""}
        assays = [DmsAssay(**{k: (defaults[k] if v is None else v) for k, v in row.items()})
                  for row in read_assay_manifest(manifest)]
    elif None in single:
        raise DnahnetError("give SCORES, --sequence and --cds (or --manifest)")
    else:
        assays = [DmsAssay(Path(scores), Path(sequence), cds, "", score_column, genetic_code,
                           damaging)]
    for assay in assays:
        assay.check()
    labels = [a.label for a in assays]
    if len(set(labels)) != len(labels):
        raise DnahnetError(f"{manifest}: assay names repeat ({', '.join(labels)}); give a "
                           "name column")
    return assays


@dataclass
class AssaySummary:
    """What one assay gave: counts and correlations with the oriented experimental scores."""

    name: str
    damaging: str = "low"
    variants: int = 0
    scored: int = 0
    skipped: Counter = field(default_factory=Counter)
    no_score: int = 0  # scored variants without a finite experimental score
    correlated: int = 0
    spearman: float = math.nan
    pearson: float = math.nan
    baselines: dict[str, dict] = field(default_factory=dict)  # name: {spearman, n}
    single_substitutions: int = 0
    spearman_single: float = math.nan  # the model on the variants BLOSUM62 scores
    sign_check: str = ""

    def as_dict(self) -> dict:
        out = {k: v for k, v in vars(self).items() if k != "skipped"}
        return {**out, "skipped": dict(self.skipped)}


@dataclass
class DmsSummary:
    """All assays, and the macro averages (the plain values for a single assay)."""

    assays: list[AssaySummary] = field(default_factory=list)

    @property
    def variants(self) -> int:
        return sum(a.variants for a in self.assays)

    @property
    def scored(self) -> int:
        return sum(a.scored for a in self.assays)

    @property
    def skipped(self) -> Counter:
        return sum((a.skipped for a in self.assays), Counter())

    @property
    def correlated(self) -> int:
        return sum(a.correlated for a in self.assays)

    @property
    def spearman(self) -> float:
        return _macro([a.spearman for a in self.assays])

    @property
    def pearson(self) -> float:
        return _macro([a.pearson for a in self.assays])

    def macro(self) -> dict:
        """Mean over assays of each correlation (assays where it is defined), with counts."""
        rows = {"model": [a.spearman for a in self.assays],
                "model_single_substitutions": [a.spearman_single for a in self.assays]}
        for name in DMS_BASELINES:
            rows[name] = [a.baselines.get(name, {}).get("spearman", math.nan)
                          for a in self.assays]
        return {name: {"spearman": _macro(values),
                       "assays": int(np.isfinite(np.asarray(values, dtype=float)).sum())}
                for name, values in rows.items()}

    def as_dict(self) -> dict:
        return {"assays": [a.as_dict() for a in self.assays], "macro": self.macro(),
                "orientation": ORIENTATION, "nan_handling": NAN_HANDLING}

    def lines(self) -> list[str]:
        out = [ORIENTATION]
        for a in self.assays:
            out.append(f"{a.name}: {a.variants} variants, {a.scored} scored")
            if a.skipped:
                reasons = ", ".join(f"{r} {n}" for r, n in sorted(a.skipped.items()))
                out.append(f"  not scored: {sum(a.skipped.values())} ({reasons})")
            if a.no_score:
                out.append(f"  scored without a finite experimental score (left out): "
                           f"{a.no_score}")
            changes = a.baselines.get("amino_acid_changes", {})
            blosum = a.baselines.get("blosum62", {})
            out += [
                f"  Spearman over {a.correlated} variants: model {_fmt(a.spearman)} "
                f"(Pearson {_fmt(a.pearson)}); amino-acid changes "
                f"{_fmt(changes.get('spearman', math.nan))}",
                f"  single amino-acid substitutions ({a.single_substitutions}): model "
                f"{_fmt(a.spearman_single)}, BLOSUM62 {_fmt(blosum.get('spearman', math.nan))}",
                f"  experimental scores: {a.damaging} = damaging; sign check: {a.sign_check}",
            ]
        if len(self.assays) > 1:
            macro = self.macro()
            cells = ", ".join(
                f"{name.replace('_', ' ')} {_fmt(m['spearman'])} ({m['assays']} assays)"
                for name, m in macro.items()
            )
            out.append(f"macro-averaged Spearman over {len(self.assays)} assays: {cells}")
        return out


ORIENTATION = ("Spearman/Pearson with the experimental scores oriented higher = fitter; "
               "predictors higher = predicted benign: LLR, minus the amino-acid changes, "
               "BLOSUM62. Positive = agreement.")
NAN_HANDLING = ("variants not scored, or without a finite experimental score, are left out "
                "of every correlation; BLOSUM62 only covers variants with exactly one "
                "amino-acid change; a correlation over fewer than 3 variants or of a constant "
                "is NaN (n/a)")


def _macro(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _fmt(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.4f}"


def summarise_assay(assay: DmsAssay, variants: list[DmsVariant]) -> AssaySummary:
    """Counts, correlations, baselines and the sign check of one scored assay."""
    summary = AssaySummary(assay.label, assay.damaging, variants=len(variants))
    for variant in variants:
        if variant.status != "ok":
            summary.skipped[variant.status] += 1
    sign = 1.0 if assay.damaging == "low" else -1.0
    used = [v for v in variants if np.isfinite(v.llr) and np.isfinite(v.score)]
    summary.scored = sum(1 for v in variants if np.isfinite(v.llr))
    summary.no_score = summary.scored - len(used)
    summary.correlated = len(used)
    if used:
        llr = np.array([v.llr for v in used])
        fitness = sign * np.array([v.score for v in used])
        summary.spearman, summary.pearson = _spearman(llr, fitness), _pearson(llr, fitness)
        predictors = dms_baselines([v.protein_changes for v in used])
        for name, values in predictors.items():
            rows = np.isfinite(values)
            summary.baselines[name] = {
                "spearman": _spearman(values[rows], fitness[rows]), "n": int(rows.sum())
            }
        single = np.isfinite(predictors["blosum62"])
        summary.single_substitutions = int(single.sum())
        summary.spearman_single = _spearman(llr[single], fitness[single])
    summary.sign_check = _sign_check(variants, sign)
    return summary


def _sign_check(variants: list[DmsVariant], sign: float) -> str:
    """Nonsense variants should score as more damaging than synonymous ones."""
    def fitness(keep) -> np.ndarray:
        return sign * np.array([v.score for v in variants if v.protein_changes is not None
                                and np.isfinite(v.score) and keep(v.protein_changes)])

    nonsense = fitness(lambda c: any(alt == "*" for _, alt in c))
    synonymous = fitness(lambda c: not c)
    if not nonsense.size or not synonymous.size:
        return (f"n/a ({nonsense.size} nonsense, {synonymous.size} synonymous variants with "
                "a score)")
    low, high = float(np.median(nonsense)), float(np.median(synonymous))
    verdict = "consistent" if low < high else (
        "REVERSED? nonsense variants look fitter than synonymous ones: check --damaging")
    return (f"{verdict} (median oriented score: nonsense {low:.3g} over {nonsense.size}, "
            f"synonymous {high:.3g} over {synonymous.size})")


def score_dms(
    assays: DmsAssay | list[DmsAssay],
    output: str | os.PathLike,
    model: ModelSource | object,
    *,
    window: int = 8192,
    reverse_complement: bool = True,
    prefix_reuse: bool = True,
    batch_size: int | None = None,
    downstream: int | None = None,
    precision: str = "fp32",
    workers: int = 1,
    device="auto",
    metrics: str | os.PathLike | None = None,
) -> DmsSummary:
    """Score every variant of one or more MaveDB score sets, write the table (and the
    ``metrics`` JSON), and correlate with the experimental scores beside the baselines."""
    if batch_size is not None and batch_size < 1:
        raise DnahnetError(f"--batch-size {batch_size}: must be >= 1")
    check_scoring_options(device, precision=precision, workers=workers, downstream=downstream)
    assays = [assays] if isinstance(assays, DmsAssay) else list(assays)
    planned = []
    for assay in assays:  # every input is read and checked before the model loads
        assay.check()
        scores_csv = Path(assay.scores)
        if not scores_csv.exists():
            raise DnahnetError(f"{scores_csv}: no such file")
        name, genome = load_context(assay.sequence)
        seq = genome.sequence(name)
        cds = parse_cds(assay.cds, len(seq))
        table = read_score_table(scores_csv, assay.score_column)
        variants = plan_variants(table, seq, cds, assay.score_column,
                                 row_line_numbers(scores_csv), CODON_TABLES[assay.genetic_code])
        _check_scorable(scores_csv, assay.score_column, variants)
        planned.append((assay, variants, _plan_sites(variants, genome.tokens(name), window)))
    check_outputs({"--output": output, "--metrics": metrics})
    network, device = ready_model(model, device)
    summary = DmsSummary()
    with (
        counter("sites", "scoring variants", sum(len(p[2][0]) for p in planned)) as advance,
        Engine(
            network, device, batch_size=batch_size, reverse_complement=reverse_complement,
            prefix_reuse=prefix_reuse, downstream=downstream, precision=precision,
            workers=workers, on_progress=advance,
        ) as engine,
    ):
        for assay, variants, (sites, slots) in planned:
            results = {score.key[0]: score for score in engine.score(sites)}
            for i, variant in enumerate(variants):
                if i not in slots:
                    continue
                span, indices = slots[i]
                result = results[span]
                variant.llr = float(np.mean(result.delta[indices]))
                if result.reverse is not None:
                    variant.llr_forward = float(np.mean(result.forward[indices]))
                    variant.llr_reverse = float(np.mean(result.reverse[indices]))
            summary.assays.append(summarise_assay(assay, variants))
    with output_group():  # the table and the metrics appear together or not at all
        tsv.write_dms_table(output, [(a.label, v) for a, v, _ in planned], reverse_complement)
        if metrics is not None:
            write_json_report(metrics, summary.as_dict())
    return summary


def _check_scorable(scores_csv: Path, score_column: str, variants: list[DmsVariant]) -> None:
    """An assay of which nothing could be correlated is the user's mistake (the coordinates
    or the column), not a result: said before the model loads."""
    if not variants:
        return
    statuses = Counter(v.status for v in variants)
    if not statuses["ok"]:
        reasons = ", ".join(f"{status} {n}" for status, n in statuses.most_common())
        raise DnahnetError(f"{scores_csv}: none of its {len(variants)} variants can be scored "
                           f"({reasons}); check --cds and the sequence")
    mismatched = statuses["reference base mismatch"]
    if mismatched * 2 > len(variants):
        log(f"warning: {scores_csv}: {mismatched} of {len(variants)} variants name a reference "
            "base the sequence does not have; check --cds")
    if not any(np.isfinite(v.score) for v in variants if v.status == "ok"):
        raise DnahnetError(f"{scores_csv}: column {score_column!r} holds no finite number for "
                           "any scorable variant; give the score column with --score-column")


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
