"""Zero-shot gene essentiality (``dnahnet essentiality``; protocol in docs/essentiality.md).

Plan: ``tasks.knockouts`` puts the in-frame stop cassette into a window around every
gene. Engine: score = log P(mutant window) - log P(wild-type window), averaged over
both strands by default (``tasks.engine``). More negative means the model finds the
knockout less plausible: more likely essential. Results: ``RankedGene``s, lowest score
first, then the genes that were skipped. Writers: ``io.tsv.write_ranking``; with
labels, ``tasks.essentiality_labels`` evaluates (beside the baselines of
``tasks.baselines``) and ``io.labels``/``io.figures`` write the metrics JSON and the ROC
curve. Several genomes are ranked one after the other, each its own block of the
ranking, and evaluated pooled, per genome and macro-averaged.

    summary = rank_genes("genome.fa", "genes.gff", "ranking.tsv", model)   # the command
    summary = rank_genes([GenomeInput("a.gbk"), GenomeInput("b.fna", "b.gff")], None,
                         "ranking.tsv", model, labels="deg.tsv")
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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io import tsv
from dnahnet_core.io.annotations import Feature, load_annotated_genome
from dnahnet_core.io.atomic import atomic_open, check_outputs, display_path, output_group
from dnahnet_core.io.figures import figure_format, plot_roc
from dnahnet_core.io.genome import Genome
from dnahnet_core.io.labels import read_labels
from dnahnet_core.io.reports import write_json_report
from dnahnet_core.model_source import ModelSource, ready_model
from dnahnet_core.progress import counter
from dnahnet_core.tasks.baselines import gene_baselines
from dnahnet_core.tasks.engine import (
    Engine,
    ModelWorkers,
    Site,
    Substitution,
    check_scoring_options,
    stream_substitutions,
)
from dnahnet_core.tasks.essentiality_labels import (
    LabelSet,
    evaluate_sets,
    metrics_lines,
    require_label_matches,
)
from dnahnet_core.tasks.knockouts import (
    CASSETTE,
    Knockout,
    KnockoutPlan,
    Skipped,
    plan_knockouts,
)


@dataclass(frozen=True)
class RankedGene:
    gene: Feature
    score: float | None  # None when skipped
    rank: int | None  # within its genome
    note: str = ""  # the reason a gene was skipped
    genome: str = ""  # the name of its GenomeInput


@dataclass(frozen=True)
class GenomeInput:
    """One genome to rank: a FASTA + annotation, or an annotation with its sequence."""

    genome: Path
    annotation: Path | None = None
    labels: Path | None = None  # its own labels file (else --labels)
    name: str = ""  # in the ranking and the metrics (default: the file name)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        name = Path(display_path(self.genome)).name  # <stdin> for -, not its copy
        for suffix in (".gz", ".bz2", ".xz", ".fna", ".fasta", ".fa", ".gbk", ".gbff", ".gb",
                       ".gff3", ".gff"):
            name = name.removesuffix(suffix)
        return name


def genome_inputs(
    paths: Sequence[str | os.PathLike] | None, manifest: str | os.PathLike | None = None
) -> list[GenomeInput]:
    """The genomes of the command line: from ``paths`` (a FASTA takes the next file as its
    annotation; a GFF3 with ##FASTA or a GenBank file with sequence stands alone; formats
    read from content) or from a ``manifest`` TSV (``io.labels.read_genome_manifest``)."""
    from dnahnet_core.io.annotations import detect_format
    from dnahnet_core.io.labels import read_genome_manifest

    if bool(paths) == bool(manifest):
        raise DnahnetError("give the genomes as arguments or as --manifest, one of the two")
    if manifest:
        return [GenomeInput(**row) for row in read_genome_manifest(manifest)]
    inputs, waiting = [], None
    for path in map(Path, paths):
        if waiting is not None:
            inputs.append(GenomeInput(waiting, path))
            waiting = None
        elif detect_format(path) == "fasta":
            waiting = path
        else:
            inputs.append(GenomeInput(path))
    if waiting is not None:
        before = inputs[-1].genome if inputs and inputs[-1].annotation is None else None
        order = (f" (the FASTA comes first: {waiting} {before}, if {before} is its "
                 "annotation)" if before is not None else "")
        raise DnahnetError(f"{waiting}: FASTA has no annotation; give a GFF3 or GenBank file "
                           f"after it{order}")
    return inputs


def score_knockouts(
    knockouts: Sequence[Knockout],
    model,
    *,
    device="auto",
    batch_size: int | None = None,
    reverse_complement: bool = True,
    prefix_reuse: bool = True,
    downstream: int | None = None,
    precision: str = "fp32",
    workers: int | ModelWorkers = 1,
    on_progress: Callable[[int], None] | None = None,
) -> list[float]:
    """Delta log-likelihood (mutant - wild type) per knockout, via the shared engine
    (``downstream``: the opt-in bounded sum, see ``tasks.engine``)."""
    engine = Engine(
        model, device=device, batch_size=batch_size, reverse_complement=reverse_complement,
        prefix_reuse=prefix_reuse, downstream=downstream, precision=precision, workers=workers,
        on_progress=on_progress,
    )
    # Sites are fed in order of cassette position, so the engine's batches (sites whose
    # shared prefixes have the same length) fill up even in small chunks; small chunks
    # keep the progress bar moving.
    order = sorted(range(len(knockouts)), key=lambda i: (len(knockouts[i].reference),
                                                         knockouts[i].cassette_start))
    sites = (Site(knockouts[i].reference, [knockouts[i].mutant], key=i) for i in order)
    scores = [0.0] * len(knockouts)
    with engine:
        for s in engine.score(sites):
            scores[s.key] = float(s.delta[0])
    return scores


def stream_knockouts(
    knockouts: Sequence[Knockout],
    genome: Genome,
    model,
    *,
    window: int = 8192,
    downstream: int | None = None,
    circular: bool = False,
    device="auto",
    reverse_complement: bool = True,
    precision: str = "fp32",
    workers: int | ModelWorkers = 1,
    on_progress: Callable[[int], None] | None = None,
) -> list[float]:
    """``--genome-stream``: the knockouts of each contig scored along the whole contig
    (``engine.stream_substitutions``): each strand's reference runs once per stretch of
    ``window`` nt, every cassette continues from the reference state there and is summed
    over its 15 nt and ``downstream`` nt after them (default ``window // 2``). An opt-in
    approximation of the windowed protocol (docs/essentiality.md). A circular contig is
    read with its other end copied before and after it, so windows wrap the origin."""
    downstream = downstream or window // 2
    scores = [0.0] * len(knockouts)
    by_contig: dict[str, list[int]] = {}
    for i, knockout in enumerate(knockouts):
        by_contig.setdefault(knockout.gene.contig, []).append(i)
    strands = 2 if reverse_complement else 1
    done = 0.0

    def advance(n: int) -> None:  # each strand's stretch counts for its share of the genes
        nonlocal done
        before, done = int(done), done + n / strands
        if on_progress is not None and int(done) > before:
            on_progress(int(done) - before)

    with contextlib.ExitStack() as stack:
        if not isinstance(workers, ModelWorkers):
            workers = stack.enter_context(ModelWorkers(model, workers))
        for contig, members in by_contig.items():
            tokens = genome.tokens(contig)
            length = len(tokens)
            pad = min(length, window + downstream + len(CASSETTE)) if circular else 0
            sequence = np.concatenate([tokens[length - pad :], tokens, tokens[:pad]])
            substitutions = []
            for i in members:
                knockout = knockouts[i]
                at = knockout.cassette_start
                start = knockout.cassette_genomic[0] % length if circular else (
                    knockout.cassette_genomic[0])
                cassette = knockout.mutant[at : at + len(CASSETTE)]
                substitutions.append(Substitution(start + pad, cassette, key=i))
            for result in stream_substitutions(
                model, sequence, substitutions, tile=window, downstream=downstream,
                reverse_complement=reverse_complement, precision=precision, device=device,
                workers=workers, on_progress=advance,
            ):
                scores[result.key] = float(result.delta)
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
class _PlannedGenome:
    source: GenomeInput
    name: str
    plan: KnockoutPlan
    baselines: dict  # Feature -> {baseline: value}


@dataclass
class EssentialitySummary:
    """What ``rank_genes`` did, for the command's closing lines."""

    feature: str
    scored: int
    skipped: list[Skipped]
    seconds: float
    report: dict | None = None
    metrics_path: Path | None = None
    genomes: int = 1

    def lines(self) -> list[str]:
        reasons = Counter(s.reason.split(":")[0] for s in self.skipped)
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())) or "none"
        seconds = max(self.seconds, 1e-9)
        where = f" in {self.genomes} genomes" if self.genomes > 1 else ""
        out = [
            f"essentiality: {self.scored} {self.feature} scored{where} in {seconds:.1f} s "
            f"({self.scored / seconds:.2f} genes/s)",
            f"skipped: {len(self.skipped)} ({skipped}); listed at the end of "
            f"{'each genome' if self.genomes > 1 else 'the ranking'}",
        ]
        if self.report is not None:
            report = self.report
            out.append(
                f"labels: {report['n_matched']}/{report['n_labels']} matched, "
                f"{report['n_scored']} scored ({report['n_essential']} E, "
                f"{report['n_nonessential']} NE); {len(report['unmatched'])} unmatched; "
                f"metrics in {self.metrics_path}"
            )
            out += metrics_lines(report)
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
    genome: str | os.PathLike | Sequence[GenomeInput],
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
    batch_size: int | None = None,
    downstream: int | None = None,
    genome_stream: bool = False,
    precision: str = "fp32",
    workers: int = 1,
    device="auto",
    bootstrap: int = 1000,
    seed: int = 0,
) -> EssentialitySummary:
    """``dnahnet essentiality``: the ranking TSV (stdout when no output); with labels, the
    metrics JSON (beside the baselines, with ``bootstrap`` replicates for the intervals;
    ``seed`` for them and the random baseline) and an optional ROC plot. ``genome``: a
    genome file (with ``annotation``) or a list of ``GenomeInput``s. Inputs and labels
    are checked before the model is loaded; nothing is written when anything fails."""
    if batch_size is not None and batch_size < 1:
        raise DnahnetError(f"--batch-size {batch_size}: must be >= 1")
    check_scoring_options(device, precision=precision, workers=workers, downstream=downstream)
    if bootstrap < 0:
        raise DnahnetError(f"--bootstrap {bootstrap}: must be >= 0")
    inputs = (list(genome) if isinstance(genome, (list, tuple))
              else [GenomeInput(Path(genome), Path(annotation) if annotation else None)])
    if not inputs:
        raise DnahnetError("no genome given")
    labelled = labels or any(g.labels for g in inputs)
    if (metrics or plot) and not labelled:
        raise DnahnetError("--metrics and --plot need --labels")
    if plot:
        figure_format(plot)
    metrics_path = (Path(metrics) if metrics else metrics_path_for(output)) if labelled else None
    check_outputs({"--output": output, "--metrics": metrics_path, "--plot": plot})
    planned = _plan_genomes(inputs, feature, labels, window=window, offset=offset,
                            circular=circular, chrom_map=chrom_map)
    network, device = ready_model(model, device)
    started = time.perf_counter()
    total = sum(len(p.plan.knockouts) for p in planned)
    ranking: list[RankedGene] = []
    with (
        counter("genes", "essentiality", total) as advance,
        ModelWorkers(network, workers) as pool,
    ):
        for p in planned:
            if genome_stream:
                scores = stream_knockouts(
                    p.plan.knockouts, p.plan.genome, network, window=window,
                    downstream=downstream, circular=circular, device=device,
                    reverse_complement=reverse_complement, precision=precision, workers=pool,
                    on_progress=advance,
                )
            else:
                scores = score_knockouts(
                    p.plan.knockouts, network, device=device, batch_size=batch_size,
                    reverse_complement=reverse_complement, prefix_reuse=prefix_reuse,
                    downstream=downstream, precision=precision, workers=pool,
                    on_progress=advance,
                )
            ranking += [replace(r, genome=p.name)
                        for r in rank(p.plan.knockouts, scores, p.plan.skipped)]
    summary = EssentialitySummary(
        feature, total, [s for p in planned for s in p.plan.skipped],
        time.perf_counter() - started, genomes=len(planned),
    )
    if labelled:
        summary.report = evaluate_sets(
            _label_sets(planned, ranking, labels),
            baselines={g: v for p in planned for g, v in p.baselines.items()},
            bootstrap=bootstrap, seed=seed,
        )
        summary.metrics_path = metrics_path
    # the ranking, metrics and plot appear together or not at all
    with output_group(), contextlib.ExitStack() as stack:
        handle = stack.enter_context(atomic_open(output, "w")) if output else sys.stdout
        tsv.write_ranking(handle, ranking)
        if summary.report is not None:
            write_json_report(summary.metrics_path, summary.report)
            if plot:
                plot_roc(summary.report, plot)
    return summary


def _plan_genomes(
    inputs: Sequence[GenomeInput], feature: str, labels, *, window: int, offset: int,
    circular: bool, chrom_map: dict[str, str] | None,
) -> list[_PlannedGenome]:
    """Read, check and plan every genome (and match its labels) before any scoring."""
    planned, names = [], Counter(g.label for g in inputs)
    truth = read_labels(labels) if labels else None
    unlabelled = []
    for index, source in enumerate(inputs, start=1):
        annotated = load_annotated_genome(source.genome, source.annotation, chrom_map=chrom_map)
        genes = annotated.features_of(feature)
        if not genes:
            kinds = sorted({f.type for f in annotated.features})
            raise DnahnetError(
                f"{annotated.sources[-1]}: no {feature!r} features (types present: "
                f"{', '.join(kinds) or 'none'}); choose one with --feature"
            )
        if source.labels:
            require_label_matches(read_labels(source.labels), genes, str(source.labels))
        elif truth is not None:
            unlabelled += genes
        plan = plan_knockouts(annotated, genes, window=window, offset=offset, circular=circular)
        if not plan.knockouts:
            raise DnahnetError(
                f"{annotated.sources[-1]}: none of the {len(genes)} {feature} features can be "
                f"scored (first reason: {plan.skipped[0].reason})"
            )
        name = source.label if names[source.label] == 1 else f"{source.label}#{index}"
        values = gene_baselines(genes, annotated.contigs)
        baselines = {g: {k: float(v[i]) for k, v in values.items()} for i, g in enumerate(genes)}
        planned.append(_PlannedGenome(source, name, plan, baselines))
    if truth is not None and unlabelled:
        require_label_matches(truth, unlabelled, str(labels))
    return planned


def _label_sets(
    planned: Sequence[_PlannedGenome], ranking: Sequence[RankedGene], labels
) -> list[LabelSet]:
    """Each genome's own labels file, and --labels for the genomes without one."""
    sets, shared = [], []
    for p in planned:
        results = [r for r in ranking if r.genome == p.name]
        if p.source.labels:
            sets.append(LabelSet(read_labels(p.source.labels), str(p.source.labels), results))
        elif labels:
            shared += results
    if shared:
        sets.append(LabelSet(read_labels(labels), str(labels), shared))
    return sets

