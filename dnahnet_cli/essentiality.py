"""`dnahnet essentiality`: rank genes by the model's response to an in-frame stop cassette."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import typer


def command(
    genome: Path = typer.Argument(
        ..., help="Genome FASTA, or a GFF3 with ##FASTA (Prokka), or GenBank/GBFF with sequence."
    ),
    annotation: Path = typer.Argument(
        None, help="GFF3 or GenBank annotation, when GENOME is a FASTA."
    ),
    model: str = typer.Option(None, "--model", "-m", help="Model directory or preset name."),
    output: Path = typer.Option(
        None, "--output", "-o", help="Ranking TSV (default: stdout)."
    ),
    labels: Path = typer.Option(
        None, "--labels", help="TSV of locus_tag/gene -> essential (E/NE, 1/0, true/false)."
    ),
    metrics: Path = typer.Option(
        None, "--metrics",
        help="Metrics JSON with --labels (default: OUTPUT with .metrics.json, or "
        "essentiality.metrics.json when the ranking goes to stdout).",
    ),
    plot: Path = typer.Option(None, "--plot", help="ROC curve image (png, pdf, svg)."),
    window: int = typer.Option(8192, "--window", help="Window length around each gene (nt)."),
    offset: int = typer.Option(
        12, "--offset", help="Cassette start: nt after the start codon (multiple of 3)."
    ),
    circular: bool = typer.Option(
        False, "--circular", help="Contigs are circular: windows and genes wrap the origin."
    ),
    feature: str = typer.Option("CDS", "--feature", help="Annotation feature type to score."),
    chrom_map: Path = typer.Option(
        None, "--chrom-map", help="TSV: annotation contig name <tab> FASTA record name."
    ),
    forward_only: bool = typer.Option(
        False, "--forward-only", help="Score the forward strand only (default: mean of both)."
    ),
    no_prefix_reuse: bool = typer.Option(
        False, "--no-prefix-reuse", help="Score full windows (slower; for comparison)."
    ),
    batch_size: int = typer.Option(8, "--batch-size", help="Windows per forward pass."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
) -> None:
    """Score every gene's knockout (delta log-likelihood); most likely essential first."""
    from dnahnet_core.device import resolve_device
    from dnahnet_core.errors import DnahnetError
    from dnahnet_core.io.annotations import load_annotated_genome
    from dnahnet_core.io.atomic import atomic_open
    from dnahnet_core.io.contigs import read_chrom_map
    from dnahnet_core.progress import log, progress
    from dnahnet_core.tasks import essentiality as ess

    if batch_size < 1:
        raise DnahnetError(f"--batch-size {batch_size}: must be >= 1")
    if (metrics or plot) and not labels:
        raise DnahnetError("--metrics and --plot need --labels")
    if plot:
        ess.plot_format(plot)
    torch_device = resolve_device(device)
    mapping = read_chrom_map(chrom_map) if chrom_map else None
    annotated = load_annotated_genome(genome, annotation, chrom_map=mapping)
    genes = annotated.features_of(feature)
    if not genes:
        kinds = sorted({f.type for f in annotated.features})
        raise DnahnetError(
            f"{annotated.sources[-1]}: no {feature!r} features (types present: "
            f"{', '.join(kinds) or 'none'}); choose one with --feature"
        )
    truth = ess.read_labels(labels) if labels else None  # validate before the long part
    if truth is not None:
        ess.require_label_matches(truth, genes, str(labels))
    plan = ess.plan_knockouts(annotated, genes, window=window, offset=offset, circular=circular)
    if not plan.knockouts:
        raise DnahnetError(
            f"{annotated.sources[-1]}: none of the {len(genes)} {feature} features can be scored "
            f"(first reason: {plan.skipped[0].reason})"
        )

    from dnahnet_core.model import load_model

    lm = load_model(model, device=torch_device).eval()
    rate = ess.Rate()
    with progress("genes") as bar:
        task = bar.add_task("essentiality", total=len(plan.knockouts), rate="")

        def advance(n: int) -> None:
            bar.update(task, advance=n, rate=rate.add(n))

        scores = ess.score_knockouts(
            plan.knockouts, lm, device=torch_device, batch_size=batch_size,
            both_strands=not forward_only, prefix_reuse=not no_prefix_reuse, on_progress=advance,
        )
    results = ess.rank(plan.knockouts, scores, plan.skipped)

    report = None
    if truth is not None:
        report = ess.evaluate(truth, results, source=str(labels))
    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(atomic_open(output, "w")) if output else sys.stdout
        ess.write_ranking(handle, results)
        if report is not None:
            metrics_path = metrics or _metrics_path(output)
            public = {k: v for k, v in report.items() if not k.startswith("_")}
            with atomic_open(metrics_path, "w") as out:
                json.dump(public, out, indent=2)
                out.write("\n")
            if plot:
                ess.plot_roc(report, plot)

    seconds = rate.elapsed
    reasons: dict[str, int] = {}
    for s in plan.skipped:
        reasons[s.reason.split(":")[0]] = reasons.get(s.reason.split(":")[0], 0) + 1
    skipped = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())) or "none"
    log(
        f"essentiality: {len(plan.knockouts)} {feature} scored in {seconds:.1f} s "
        f"({len(plan.knockouts) / seconds:.2f} genes/s)"
    )
    log(f"skipped: {len(plan.skipped)} ({skipped}); listed at the end of the ranking")
    if report is not None:
        auroc = "n/a" if report["auroc"] is None else f"{report['auroc']:.4f}"
        auprc = "n/a" if report["auprc"] is None else f"{report['auprc']:.4f}"
        log(
            f"labels: {report['n_matched']}/{report['n_labels']} matched, "
            f"{report['n_scored']} scored ({report['n_essential']} E, "
            f"{report['n_nonessential']} NE); AUROC {auroc}, AUPRC {auprc}; "
            f"{len(report['unmatched'])} unmatched; metrics in {metrics or _metrics_path(output)}"
        )


def _metrics_path(output: Path | None) -> Path:
    if output is None:
        return Path("essentiality.metrics.json")
    name = output.name
    for suffix in (".tsv", ".txt", ".tab"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return output.with_name(name + ".metrics.json")
