"""`dnahnet prepare`: genomes → filtered, deduplicated 8,192-nt fragments in shards."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import at_least, between, input_file, number_range, output_dir, up_to_cpus


def command(
    inputs: list[Path] = typer.Argument(
        ...,
        help="FASTA files (plain/gz/bgzip/xz/bz2), directories of them, text files listing "
        "paths, or JSON-lines / Parquet tables with a sequence column; - reads a FASTA "
        "from standard input.",
        show_default=False,
        callback=input_file,
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output dataset directory.", callback=output_dir
    ),
    fragment_length: int = typer.Option(
        8192, help="Fragment length in nucleotides.", callback=at_least(1)
    ),
    keep_tail: bool = typer.Option(
        False,
        "--keep-tail/--drop-tail",
        help="Keep a record's last, shorter window if >= --min-tail-length (padded and "
        "masked at training), or drop it.",
    ),
    min_tail_length: int = typer.Option(
        1024, help="Shortest tail kept with --keep-tail.", callback=at_least(1)
    ),
    metadata: list[Path] = typer.Option(
        [], "--metadata", help="GTDB bac120/ar53 metadata TSV (repeatable).",
        callback=input_file,
    ),
    min_completeness: float = typer.Option(
        90.0, help="With --metadata: minimum CheckM completeness (%).",
        callback=between(0, 100),
    ),
    max_contamination: float = typer.Option(
        5.0, help="With --metadata: maximum CheckM contamination (%).",
        callback=at_least(0),
    ),
    representatives_only: bool = typer.Option(
        False, "--representatives-only", help="With --metadata: GTDB species representatives only."
    ),
    val_fraction: float = typer.Option(
        0.01, help="Fraction of genomes for validation.",
        callback=number_range(0, below=1, why="the train split needs genomes"),
    ),
    test_fraction: float = typer.Option(
        0.01, help="Fraction of genomes for test.",
        callback=number_range(0, below=1, why="the train split needs genomes"),
    ),
    max_n_fraction: float = typer.Option(
        0.1, help="Drop fragments with more N than this.", callback=between(0, 1)
    ),
    dedup: bool = typer.Option(
        True, "--dedup/--no-dedup", help="Drop repeated fragments (reverse complements count)."
    ),
    sequence_field: str = typer.Option(
        None, help="Sequence column of JSON-lines/Parquet inputs (default: sequence or text)."
    ),
    id_field: str = typer.Option(None, help="Genome id column of JSON-lines/Parquet inputs."),
    workers: int = typer.Option(
        1, "--workers", "-j", help="Worker processes (over files).", callback=up_to_cpus(1)
    ),
    seed: int = common.seed_option(0, "Seed of the train/val/test assignment."),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Log bad inputs and continue; the manifest lists them."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
) -> None:
    """Cut genomes into non-overlapping fragments for training (filters, dedup, splits)."""
    from dnahnet_core.data.prepare import PrepareOptions, prepare, summary

    options = PrepareOptions(
        fragment_length=fragment_length,
        keep_tail=keep_tail,
        min_tail_length=min(min_tail_length, fragment_length),
        max_n_fraction=max_n_fraction,
        dedup=dedup,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        metadata=[str(p) for p in metadata],
        min_completeness=min_completeness,
        max_contamination=max_contamination,
        representatives_only=representatives_only,
        sequence_field=sequence_field,
        id_field=id_field,
        workers=workers,
        skip_bad=skip_bad,
    )
    command_line = ["dnahnet", "prepare", *sys.argv[2:]] if len(sys.argv) > 1 else []
    manifest = prepare(inputs, out, options, overwrite=overwrite, command=command_line)
    typer.echo(summary(manifest).rstrip(), err=True)
    typer.echo(f"wrote {out}", err=True)
