"""`dnahnet segments-report`: boundary rates by codon position, region class, start codons."""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli.validate import input_file, output_dir


def command(
    chunks: Path = typer.Argument(
        ..., help="BED written by `dnahnet segments`; - reads standard input.",
        callback=input_file,
    ),
    annotation: Path = typer.Option(
        ..., "--annotation", "-a",
        help="GFF3 (with --genome, or with a ##FASTA section) or GenBank with sequence.",
        callback=input_file,
    ),
    genome: Path = typer.Option(
        None, "--genome", "-g", help="Genome FASTA (for a plain GFF3).", callback=input_file
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Report directory (TSVs, PNGs).", callback=output_dir
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing non-empty report directory."
    ),
) -> None:
    """Measure where chunk boundaries fall: codon positions, region classes, start codons."""
    from dnahnet_core.progress import log
    from dnahnet_core.tasks.segments_report import key_table, report_segments

    report, names = report_segments(chunks, annotation, genome, output, overwrite=overwrite)
    typer.echo(key_table(report))
    log(f"wrote {', '.join(names)} to {output}")
