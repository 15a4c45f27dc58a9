"""`dnahnet segments-report`: boundary rates by codon position, region class, start codons."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    chunks: Path = typer.Argument(..., help="BED written by `dnahnet segments`."),
    annotation: Path = typer.Option(
        ..., "--annotation", "-a",
        help="GFF3 (with --genome, or with a ##FASTA section) or GenBank with sequence.",
    ),
    genome: Path = typer.Option(None, "--genome", "-g", help="Genome FASTA (for a plain GFF3)."),
    output: Path = typer.Option(..., "--output", "-o", help="Report directory (TSVs, PNGs)."),
) -> None:
    """Measure where chunk boundaries fall: codon positions, region classes, start codons."""
    from dnahnet_core.io.annotations import load_annotated_genome
    from dnahnet_core.io.atomic import atomic_directory
    from dnahnet_core.io.tracks import read_bed
    from dnahnet_core.progress import log
    from dnahnet_core.tasks.segments_report import build_report, key_table, write_report

    if genome is not None:
        annotated = load_annotated_genome(genome, annotation)
    else:
        annotated = load_annotated_genome(annotation)
    lengths = {name: len(seq) for name, seq in annotated.contigs.items()}
    report = build_report(read_bed(chunks), annotated.features, lengths, str(chunks))
    with atomic_directory(output) as tmp:
        names = write_report(report, tmp)
    typer.echo(key_table(report))
    log(f"wrote {', '.join(names)} to {output}")
