"""`dnahnet essentiality`: rank genes by the model's response to an in-frame stop cassette."""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import (
    at_least,
    between,
    input_file,
    output_file,
    stream_keeps_prefix_reuse,
)


def command(
    genomes: list[Path] = typer.Argument(
        None, metavar="GENOME [ANNOTATION] ...",
        help="A genome FASTA followed by its GFF3 or GenBank annotation, or a GFF3 with "
        "##FASTA (Prokka) or a GenBank/GBFF file with sequence alone; several genomes may "
        "follow one another (ranked and evaluated together).",
        callback=input_file,
    ),
    manifest: Path = typer.Option(
        None, "--manifest",
        help="TSV of genomes instead of GENOME arguments: a header naming genome and "
        "optionally annotation, labels (that genome's own labels file), name.",
        callback=input_file,
    ),
    model: str = common.ModelOption,
    config: str = common.ConfigOption,
    seed: int = common.SeedOption,
    output: Path = common.output_option("Ranking TSV (default: stdout)."),
    labels: Path = typer.Option(
        None, "--labels", help="TSV of locus_tag/gene -> essential (E/NE, 1/0, true/false): "
        "AUROC/AUPRC beside trivial baselines, pooled and per genome.",
        callback=input_file,
    ),
    bootstrap: int = typer.Option(
        1000, "--bootstrap", help="Bootstrap replicates for the 95% interval of every AUROC "
        "(seeded; 0: no intervals; at most 100,000).", callback=between(0, 100_000),
    ),
    metrics: Path = typer.Option(
        None, "--metrics",
        help="Metrics JSON with --labels (default: OUTPUT with .metrics.json, or "
        "essentiality.metrics.json when the ranking goes to stdout).",
        callback=output_file,
    ),
    plot: Path = typer.Option(
        None, "--plot", help="ROC curve image (png, pdf, svg).", callback=output_file
    ),
    window: int = common.window_option("Window length around each gene (nt)."),
    offset: int = typer.Option(
        12, "--offset", help="Cassette start: nt after the start codon (multiple of 3).",
        callback=at_least(0),
    ),
    circular: bool = common.circular_option(
        "Contigs are circular: windows and genes wrap the origin."
    ),
    feature: str = typer.Option("CDS", "--feature", help="Annotation feature type to score."),
    chrom_map: Path = common.chrom_map_option("annotation"),
    reverse_complement: bool = common.ReverseComplementOption,
    prefix_reuse: bool = common.PrefixReuseOption,
    batch_size: int = common.ScoringBatchSizeOption,
    device: str = common.DeviceOption,
    downstream: int = common.DownstreamOption,
    genome_stream: bool = typer.Option(
        False, "--genome-stream",
        help="Opt-in approximation: run each strand once per --window stretch of the genome "
        "and continue every cassette from the reference state there (with --downstream, "
        "default window/2); fidelity and speed in docs/essentiality.md.",
    ),
    precision: str = common.ScoringPrecisionOption,
    workers: int = common.WorkersOption,
) -> None:
    """Score every gene's knockout (delta log-likelihood); most likely essential first."""
    from dnahnet_core.io.contigs import read_chrom_map
    from dnahnet_core.progress import log
    from dnahnet_core.tasks.essentiality import genome_inputs, rank_genes

    if bool(genomes) == bool(manifest):
        raise typer.BadParameter(
            "give the genome files (GENOME [ANNOTATION] ...) or --manifest, one of the two"
            if genomes else "missing genome: give GENOME [ANNOTATION] ... or --manifest"
        )

    stream_keeps_prefix_reuse(genome_stream, prefix_reuse)
    summary = rank_genes(
        genome_inputs(genomes, manifest), None, output, common.model_source(model, config, seed),
        feature=feature, labels=labels, metrics=metrics, plot=plot, window=window, offset=offset,
        circular=circular, chrom_map=read_chrom_map(chrom_map) if chrom_map else None,
        reverse_complement=reverse_complement, prefix_reuse=prefix_reuse,
        batch_size=batch_size, device=device, bootstrap=bootstrap, downstream=downstream,
        genome_stream=genome_stream, precision=precision, workers=workers,
    )
    for line in summary.lines():
        log(line)
