"""Zero-shot gene essentiality (``dnahnet essentiality``; protocol in docs/essentiality.md).

Plan: ``tasks.knockouts`` puts the in-frame stop cassette into a window around every
gene. Engine: score = log P(mutant window) - log P(wild-type window), averaged over
both strands by default (``tasks.engine``). More negative means the model finds the
knockout less plausible: more likely essential. Results: ``RankedGene``s, lowest score
first, then the genes that were skipped. Writers: ``io.tsv.write_ranking``; with
labels, ``tasks.essentiality_labels`` evaluates and ``io.labels``/``io.figures`` write
the metrics JSON and the ROC curve.

    summary = rank_genes("genome.fa", "genes.gff", "ranking.tsv", model)   # the command
    plan = plan_knockouts(genome, genes, window=8192, offset=12)          # or step by step
    scores = score_knockouts(plan.knockouts, model, device="auto")
    ranking = rank(plan.knockouts, scores, plan.skipped)
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io import tsv
from dnahnet_core.io.annotations import Feature, load_annotated_genome
from dnahnet_core.io.atomic import atomic_open, check_output_file, output_group
from dnahnet_core.io.figures import figure_format, plot_roc
from dnahnet_core.io.labels import read_labels, write_label_metrics
from dnahnet_core.model_source import ModelSource, ready_model
from dnahnet_core.progress import counter
from dnahnet_core.tasks.engine import Engine, Site
from dnahnet_core.tasks.essentiality_labels import evaluate, require_label_matches
from dnahnet_core.tasks.knockouts import Knockout, Skipped, plan_knockouts


@dataclass(frozen=True)
class RankedGene:
    gene: Feature
    score: float | None  # None when skipped
    rank: int | None
    note: str = ""  # the reason a gene was skipped


def score_knockouts(
    knockouts: Sequence[Knockout],
    model,
    *,
    device="auto",
    batch_size: int = 8,
    reverse_complement: bool = True,
    prefix_reuse: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> list[float]:
    """Delta log-likelihood (mutant - wild type) per knockout, via the shared engine."""
    engine = Engine(
        model,
        device=device,
        batch_size=batch_size,
        reverse_complement=reverse_complement,
        prefix_reuse=prefix_reuse,
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


def rank(
    knockouts: Sequence[Knockout], scores: Sequence[float], skipped: Sequence[Skipped]
) -> list[RankedGene]:
    """Scored genes most-likely-essential first (lowest score), then skipped genes."""
    order = sorted(
        range(len(knockouts)),
        key=lambda i: (scores[i], knockouts[i].gene.contig, knockouts[i].gene.start),
    )
    results = [
        RankedGene(knockouts[i].gene, float(scores[i]), position)
        for position, i in enumerate(order, start=1)
    ]
    results += [RankedGene(s.gene, None, None, f"skipped: {s.reason}") for s in skipped]
    return results


@dataclass
class EssentialitySummary:
    """What ``rank_genes`` did, for the command's closing lines."""

    feature: str
    scored: int
    skipped: list[Skipped]
    seconds: float
    report: dict | None = None
    metrics_path: Path | None = None

    def lines(self) -> list[str]:
        reasons = Counter(s.reason.split(":")[0] for s in self.skipped)
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())) or "none"
        seconds = max(self.seconds, 1e-9)
        out = [
            f"essentiality: {self.scored} {self.feature} scored in {seconds:.1f} s "
            f"({self.scored / seconds:.2f} genes/s)",
            f"skipped: {len(self.skipped)} ({skipped}); listed at the end of the ranking",
        ]
        if self.report is not None:
            report = self.report
            auroc = "n/a" if report["auroc"] is None else f"{report['auroc']:.4f}"
            auprc = "n/a" if report["auprc"] is None else f"{report['auprc']:.4f}"
            out.append(
                f"labels: {report['n_matched']}/{report['n_labels']} matched, "
                f"{report['n_scored']} scored ({report['n_essential']} E, "
                f"{report['n_nonessential']} NE); AUROC {auroc}, AUPRC {auprc}; "
                f"{len(report['unmatched'])} unmatched; metrics in {self.metrics_path}"
            )
        return out


def metrics_path_for(output: str | os.PathLike | None) -> Path:
    """The default metrics JSON: OUTPUT with .metrics.json (essentiality.metrics.json for
    a ranking on stdout)."""
    if output is None or str(output) == "-":
        return Path("essentiality.metrics.json")
    output = Path(output)
    name = output.name
    for suffix in (".tsv", ".txt", ".tab"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return output.with_name(name + ".metrics.json")


def rank_genes(
    genome: str | os.PathLike,
    annotation: str | os.PathLike | None,
    output: str | os.PathLike | None,
    model: ModelSource | object,
    *,
    feature: str = "CDS",
    labels: str | os.PathLike | None = None,
    metrics: str | os.PathLike | None = None,
    plot: str | os.PathLike | None = None,
    window: int = 8192,
    offset: int = 12,
    circular: bool = False,
    chrom_map: dict[str, str] | None = None,
    reverse_complement: bool = True,
    prefix_reuse: bool = True,
    batch_size: int = 8,
    device="auto",
) -> EssentialitySummary:
    """``dnahnet essentiality``: the ranking TSV (stdout when no output); with labels, the
    metrics JSON and an optional ROC plot. Inputs and labels are checked before the model
    is loaded; nothing is written when anything fails."""
    if batch_size < 1:
        raise DnahnetError(f"--batch-size {batch_size}: must be >= 1")
    if (metrics or plot) and not labels:
        raise DnahnetError("--metrics and --plot need --labels")
    if plot:
        figure_format(plot)
    for path in (output, metrics, plot):  # fail before the long part, not after it
        if path is not None:
            check_output_file(path)
    if labels and not metrics:
        check_output_file(metrics_path_for(output))
    annotated = load_annotated_genome(genome, annotation, chrom_map=chrom_map)
    genes = annotated.features_of(feature)
    if not genes:
        kinds = sorted({f.type for f in annotated.features})
        raise DnahnetError(
            f"{annotated.sources[-1]}: no {feature!r} features (types present: "
            f"{', '.join(kinds) or 'none'}); choose one with --feature"
        )
    truth = read_labels(labels) if labels else None
    if truth is not None:
        require_label_matches(truth, genes, str(labels))
    plan = plan_knockouts(annotated, genes, window=window, offset=offset, circular=circular)
    if not plan.knockouts:
        raise DnahnetError(
            f"{annotated.sources[-1]}: none of the {len(genes)} {feature} features can be scored "
            f"(first reason: {plan.skipped[0].reason})"
        )
    network, device = ready_model(model, device)
    started = time.perf_counter()
    with counter("genes", "essentiality", len(plan.knockouts), rate=_genes_per_second) as advance:
        scores = score_knockouts(
            plan.knockouts, network, device=device, batch_size=batch_size,
            reverse_complement=reverse_complement, prefix_reuse=prefix_reuse,
            on_progress=advance,
        )
    summary = EssentialitySummary(
        feature, len(plan.knockouts), plan.skipped, time.perf_counter() - started
    )
    ranking = rank(plan.knockouts, scores, plan.skipped)
    if truth is not None:
        summary.report = evaluate(truth, ranking, source=str(labels))
        summary.metrics_path = Path(metrics) if metrics else metrics_path_for(output)
    # the ranking, metrics and plot appear together or not at all
    with output_group(), contextlib.ExitStack() as stack:
        handle = stack.enter_context(atomic_open(output, "w")) if output else sys.stdout
        tsv.write_ranking(handle, ranking)
        if summary.report is not None:
            write_label_metrics(summary.metrics_path, summary.report)
            if plot:
                plot_roc(summary.report, plot)
    return summary


def _genes_per_second(done: int, seconds: float) -> str:
    return f"{done / seconds:.2f} genes/s"
