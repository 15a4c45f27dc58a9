"""`dnahnet check-model`: zero-shot checks of a model on an annotated genome."""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import at_least, input_file, seed_range, supported_genetic_code


def command(
    genome: Path = typer.Option(
        ..., "--genome", "-g",
        help="Genome FASTA, or a GFF3 with ##FASTA (Prokka), or GenBank/GBFF with sequence.",
        callback=input_file,
    ),
    annotation: Path = typer.Option(
        None, "--annotation", "-a", help="GFF3 or GenBank annotation, when --genome is a FASTA.",
        callback=input_file,
    ),
    output: Path = common.output_option(
        "JSON report (every number, every SNV scored); '-' writes it to stdout and the table "
        "to stderr."
    ),
    model: str = common.ModelOption,
    config: str = common.ConfigOption,
    seed: int = common.SeedOption,
    max_bases: int = typer.Option(
        131_072, "--max-bases",
        help="Genome sample for boundaries and bits/nt: seeded CDS-rich windows totalling at "
        "most this many nt, each run on both strands (0 = skip). With the defaults (131,072 "
        "nt; 100 SNVs per class in 1,024-nt windows) the whole check took 224 CPU-seconds "
        "on one core with the earlier default model (dnahnet-small, 6.3 M parameters) on a "
        "0.84 Mbp genome.",
        callback=at_least(0),
    ),
    sample_window: int = typer.Option(
        8192, "--sample-window", help="Length of the sample windows (nt).", callback=at_least(16)
    ),
    snvs: int = typer.Option(
        100, "--snvs", help="SNVs per class (synonymous, missense, nonsense) to score (0 = skip).",
        callback=at_least(0),
    ),
    window: int = common.window_option(
        "Window centred on each SNV (nt); score-variants uses 8,192 (8x slower).", 1024
    ),
    reverse_complement: bool = common.ReverseComplementOption,
    genetic_code: int = typer.Option(
        None, "--genetic-code",
        help="NCBI translation table (1, 4, 11 or 25) for every CDS. Default: each CDS's "
        "transl_table from the annotation, else 11.",
        callback=supported_genetic_code,
    ),
    sample_seed: int = typer.Option(
        0, "--sample-seed", help="Seed of the genome sample, the SNVs and the bootstrap.",
        callback=seed_range,
    ),
    untrained_baseline: bool = typer.Option(
        True, "--untrained-baseline/--no-untrained-baseline",
        help="Also run the sample through the same architecture untrained (seeded by "
        "--sample-seed): the periodicity that base composition alone gives its routers.",
    ),
    chrom_map: Path = common.chrom_map_option("annotation"),
    batch_size: int = common.batch_size_option(4),
    device: str = common.DeviceOption,
) -> None:
    """Codon periodicity of the learned boundaries, SNV classes and bits/nt, with baselines."""
    from dnahnet_core.io.contigs import read_chrom_map
    from dnahnet_core.tasks.model_checks import CheckOptions, check_model, format_report

    options = CheckOptions(
        max_bases=max_bases, sample_window=sample_window, snvs_per_class=snvs,
        snv_window=window, reverse_complement=reverse_complement, genetic_code=genetic_code,
        seed=sample_seed, batch_size=batch_size, untrained_baseline=untrained_baseline,
    )
    report = check_model(
        common.model_source(model, config, seed), genome, annotation, options, device=device,
        chrom_map=read_chrom_map(chrom_map) if chrom_map else None, output=output,
    )
    typer.echo(format_report(report), nl=False, err=str(output) == "-")
