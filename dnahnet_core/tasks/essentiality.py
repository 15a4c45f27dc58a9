"""Zero-shot gene essentiality: the in-frame stop-cassette protocol (docs/essentiality.md).

For each gene: a window of ``window`` nt centred on the gene; the 15-nt cassette
``TAATAATAATAGTGA`` written on the gene's strand, in its reading frame, ``offset`` nt
after the first base of the start codon; score = log P(mutant window) - log P(wild-type
window), averaged over both strands by default (``tasks.engine``). More negative means
the model finds the knockout less plausible: more likely essential.

    plan = plan_knockouts(genome, genes, window=8192, offset=12, circular=False)
    results = score_knockouts(plan.knockouts, model, device="cpu")
    table = rank(results, plan.skipped)

Coordinates here are 0-based half-open and *unwrapped*: on a circular contig a window
or gene may start below 0 or end past the contig length; bases are read modulo it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dnahnet_core.alphabet import encode, reverse_complement
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.annotations import AnnotatedGenome, Feature
from dnahnet_core.tasks.windows import Window, window_tokens

CASSETTE = "TAATAATAATAGTGA"


@dataclass(frozen=True)
class Knockout:
    """One gene ready to score: the two windows and where the cassette sits in them."""

    gene: Feature
    window: Window
    reference: np.ndarray  # uint8 tokens, forward strand of the contig
    mutant: np.ndarray
    cassette_start: int  # index in the window of the cassette's leftmost base
    cassette_genomic: tuple[int, int]  # unwrapped 0-based half-open contig interval


@dataclass(frozen=True)
class Skipped:
    gene: Feature
    reason: str


@dataclass
class Plan:
    knockouts: list[Knockout] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class Result:
    gene: Feature
    score: float | None  # None when skipped
    rank: int | None
    note: str = ""  # the reason a gene was skipped


# ---------------------------------------------------------------- geometry


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
        return f"too short: {room} nt, the cassette needs {needed} (phase + offset + 15)"
    if gene.strand == "-":
        hi = five - gene.phase - offset + 1
        return hi - len(CASSETTE), hi
    lo = five + gene.phase + offset
    return lo, lo + len(CASSETTE)


def knockout_window(
    span: tuple[int, int], site: tuple[int, int], contig_length: int, width: int, circular: bool
) -> Window:
    """``width`` nt centred on the gene span, moved if needed to keep the cassette inside.

    A gene longer than the window would leave its cassette outside a centred window; the
    window is then shifted (the least possible) so that ``width // 8`` nt of context lie
    on each side of the cassette. Linear contigs clip the window at their ends; circular
    contigs wrap (a width above the contig length becomes the contig length).
    """
    if circular:
        width = min(width, contig_length)
    start = (span[0] + span[1] - width) // 2
    margin = min(width // 8, max(0, (width - (site[1] - site[0])) // 2))
    if start > site[0] - margin:
        start = site[0] - margin
    if start + width < site[1] + margin:
        start = site[1] + margin - width
    end = start + width
    if circular:
        return Window(start, end, contig_length, True, False)
    clipped = (max(0, start), min(contig_length, end))
    return Window(clipped[0], clipped[1], contig_length, False, clipped != (start, end))


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
) -> Plan:
    """Reference and mutant windows for every gene that can be scored; reasons for the rest."""
    if window < 2 * len(CASSETTE):
        raise DnahnetError(f"--window {window}: must be at least {2 * len(CASSETTE)} nt")
    if offset < 0 or offset % 3:
        raise DnahnetError(f"--offset {offset}: must be a non-negative multiple of 3 (in frame)")
    plan = Plan()
    tokens_of: dict[str, np.ndarray] = {}
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
        if gene.contig not in tokens_of:
            tokens_of[gene.contig] = encode(genome.contigs[gene.contig], where=gene.contig)
        contig = tokens_of[gene.contig]
        span = gene_span(gene, length)
        win = knockout_window(span, site, length, window, circular)
        reference = np.ascontiguousarray(window_tokens(contig, win))
        mutant = reference.copy()
        at = site[0] - win.start
        mutant[at : at + len(CASSETTE)] = cassette[gene.strand]
        plan.knockouts.append(Knockout(gene, win, reference, mutant, at, site))
    return plan


# ---------------------------------------------------------------- scoring, ranking


def score_knockouts(
    knockouts: Sequence[Knockout],
    model,
    *,
    device="auto",
    batch_size: int = 8,
    both_strands: bool = True,
    prefix_reuse: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> list[float]:
    """Delta log-likelihood (mutant - wild type) per knockout, via the shared engine."""
    from dnahnet_core.tasks.engine import Engine, Site

    engine = Engine(
        model,
        device=device,
        batch_size=batch_size,
        reverse_complement=both_strands,
        naive=not prefix_reuse,
        on_progress=on_progress,
        chunk_sites=4 * batch_size,
    )
    # Sites are fed in order of cassette position, so the engine's batches (sites whose
    # shared prefixes have the same length) fill up even in small chunks; small chunks
    # keep the progress bar moving.
    order = sorted(range(len(knockouts)), key=lambda i: (len(knockouts[i].reference),
                                                         knockouts[i].cassette_start))
    sites = (Site(knockouts[i].reference, [knockouts[i].mutant], key=i) for i in order)
    scores = [0.0] * len(knockouts)
    for s in engine.score(sites):
        scores[s.key] = float(s.delta[0])
    return scores


def rank(knockouts: Sequence[Knockout], scores: Sequence[float], skipped: Sequence[Skipped]):
    """Scored genes most-likely-essential first (lowest score), then skipped genes."""
    order = sorted(
        range(len(knockouts)),
        key=lambda i: (scores[i], knockouts[i].gene.contig, knockouts[i].gene.start),
    )
    results = [
        Result(knockouts[i].gene, float(scores[i]), position)
        for position, i in enumerate(order, start=1)
    ]
    results += [Result(s.gene, None, None, f"skipped: {s.reason}") for s in skipped]
    return results


COLUMNS = ["locus_tag", "gene", "product", "contig", "start", "end", "strand", "score", "rank",
           "note"]


def _clean(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ")


def write_ranking(handle, results: Sequence[Result]) -> None:
    """The ranking TSV (columns: ``COLUMNS``); coordinates 1-based closed as in GFF."""
    handle.write("\t".join(COLUMNS) + "\n")
    for r in results:
        g = r.gene
        row = [
            g.label, g.name, g.product, g.contig, str(g.start), str(g.end), g.strand,
            "" if r.score is None else f"{r.score:.6g}",
            "" if r.rank is None else str(r.rank),
            r.note,
        ]
        handle.write("\t".join(_clean(x) for x in row) + "\n")


class Rate:
    """Genes per second for the progress bar."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.done = 0

    @property
    def elapsed(self) -> float:
        return max(time.perf_counter() - self.started, 1e-9)

    def add(self, n: int) -> str:
        self.done += n
        return f"{self.done / self.elapsed:.2f} genes/s"


# ---------------------------------------------------------------- labels, evaluation

_ESSENTIAL = {"e", "essential", "1", "true", "t", "yes", "y"}
_NONESSENTIAL = {"ne", "non-essential", "nonessential", "non_essential", "0", "false", "f", "no",
                 "n"}
_ID_COLUMNS = ("locus_tag", "gene", "id", "name", "old_locus_tag", "gene_name", "locus")
_LABEL_COLUMNS = ("essential", "essentiality", "label", "class", "status", "is_essential")


def _label_value(text: str) -> bool | None:
    text = text.strip().lower()
    if text in _ESSENTIAL:
        return True
    if text in _NONESSENTIAL:
        return False
    return None


def read_labels(path) -> dict[str, bool]:
    """A TSV of id -> essential (E/NE, 1/0, true/false, yes/no), with or without a header.

    Without a header the first column is the id, the second the label. With one, the id
    column is the first named like locus_tag/gene/id and the label column the first
    named like essential/label/class (else the first and second columns).
    """
    from pathlib import Path

    path = Path(path)
    labels: dict[str, bool] = {}
    id_col, label_col = 0, 1
    first = True
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = [f.strip() for f in (line.split("\t") if "\t" in line else line.split())]
            if first:
                first = False
                if len(fields) < 2:
                    raise DnahnetError(f"{path}: line {number}: expected two columns: id, label")
                if _label_value(fields[1]) is None or fields[0].lower() in _ID_COLUMNS:  # header
                    names = [f.lower() for f in fields]
                    id_col = next((names.index(c) for c in _ID_COLUMNS if c in names), 0)
                    label_col = next(
                        (names.index(c) for c in _LABEL_COLUMNS if c in names),
                        1 if id_col != 1 else 0,
                    )
                    continue
            if len(fields) <= max(id_col, label_col):
                raise DnahnetError(f"{path}: line {number}: too few columns")
            ident, value = fields[id_col], _label_value(fields[label_col])
            if value is None:
                raise DnahnetError(
                    f"{path}: line {number}: label {fields[label_col]!r} is not one of "
                    "E/NE, 1/0, true/false, yes/no"
                )
            if ident in labels and labels[ident] != value:
                raise DnahnetError(
                    f"{path}: line {number}: {ident!r} is labelled twice, differently"
                )
            labels[ident] = value
    if not labels:
        raise DnahnetError(f"{path}: no labels")
    return labels


def match_labels(labels: dict[str, bool], results: Sequence[Result]):
    """Label id -> result, by locus tag, then old locus tag, then gene name (unique only).

    Returns (matched: list of (id, how, result, label), unmatched ids, ambiguous ids).
    """
    indexes: dict[str, dict[str, list[Result]]] = {"locus_tag": {}, "old_locus_tag": {}, "gene": {}}
    for r in results:
        for how, value in (("locus_tag", r.gene.label), ("old_locus_tag", r.gene.old_locus_tag),
                           ("gene", r.gene.name)):
            for key in {value, value.lower()} if value else ():
                indexes[how].setdefault(key, []).append(r)
    matched, unmatched, ambiguous = [], [], []
    taken: set[int] = set()
    for ident, label in labels.items():
        found = None
        for how in ("locus_tag", "old_locus_tag", "gene"):
            hits = indexes[how].get(ident) or indexes[how].get(ident.lower())
            if hits:
                found = (how, hits)
                break
        if found is None:
            unmatched.append(ident)
        elif len({id(h) for h in found[1]}) > 1:
            ambiguous.append(ident)
        elif id(found[1][0]) in taken:
            ambiguous.append(ident)  # a second id for a gene already labelled
        else:
            taken.add(id(found[1][0]))
            matched.append((ident, found[0], found[1][0], label))
    return matched, unmatched, ambiguous


def _no_match(labels: dict[str, bool], genes: Sequence[Feature], source: str) -> DnahnetError:
    example = ", ".join(list(labels)[:3])
    names = ", ".join(g.label for g in genes[:3])
    return DnahnetError(
        f"{source}: none of the {len(labels)} ids matches a gene by locus_tag, "
        f"old_locus_tag or gene name (ids like {example}; genes like {names})"
    )


def require_label_matches(labels: dict[str, bool], genes: Sequence[Feature], source: str) -> None:
    """Fail before any scoring when no label id names one of ``genes``."""
    matched, _, _ = match_labels(labels, [Result(g, None, None) for g in genes])
    if not matched:
        raise _no_match(labels, genes, source)


def evaluate(labels: dict[str, bool], results: Sequence[Result], *, source: str = "labels"):
    """AUROC/AUPRC of -score against the labels, with counts and unmatched ids (a dict)."""
    from dnahnet_core.tasks import classification_metrics as cm

    matched, unmatched, ambiguous = match_labels(labels, results)
    if not matched:
        raise _no_match(labels, [r.gene for r in results], source)
    scored = [(m, m[2].score) for m in matched if m[2].score is not None]
    y = np.array([m[3] for m, _ in scored], dtype=bool)
    predictor = -np.array([s for _, s in scored], dtype=np.float64)
    report: dict = {
        "n_labels": len(labels),
        "n_matched": len(matched),
        "n_scored": len(scored),
        "n_essential": int(y.sum()),
        "n_nonessential": int((~y).sum()),
        "matched_by": {how: sum(1 for m in matched if m[1] == how)
                       for how in ("locus_tag", "old_locus_tag", "gene")},
        "auroc": None,
        "auprc": None,
        "essential_fraction": float(y.mean()) if y.size else None,
        "score_direction": "lower score = more likely essential; metrics use -score",
        "matched_not_scored": [m[0] for m in matched if m[2].score is None],
        "unmatched": unmatched,
        "ambiguous": ambiguous,
    }
    if y.any() and (~y).any():
        report["auroc"] = cm.auroc(predictor, y)
        report["auprc"] = cm.auprc(predictor, y)
        fpr, tpr, _ = cm.roc_curve(predictor, y)
        report["_roc"] = (fpr, tpr)
    return report


def plot_format(path) -> str:
    """The image format named by the file suffix; an unknown one is a user error."""
    from pathlib import Path

    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in {"png", "pdf", "svg", "jpg", "jpeg", "eps", "tif", "tiff"}:
        raise DnahnetError(f"--plot {path}: use a .png, .pdf or .svg file name")
    return suffix


def plot_roc(report: dict, path, *, title: str = "") -> None:
    """The ROC curve of an ``evaluate`` report, written atomically (format from the suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dnahnet_core.io.atomic import atomic_path

    if "_roc" not in report:
        raise DnahnetError(f"{path}: no ROC curve: the matched genes need both classes")
    fpr, tpr = report["_roc"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, lw=1.6, label=f"AUROC = {report['auroc']:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    counts = f"{report['n_essential']} E / {report['n_nonessential']} NE"
    ax.set_title(title or f"essentiality ({counts})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=plot_format(path))
    plt.close(fig)
