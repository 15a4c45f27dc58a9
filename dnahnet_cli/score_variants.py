"""`dnahnet score-variants`: log-likelihood ratio of every ALT allele of a VCF."""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import (
    at_least,
    input_file,
    stream_keeps_prefix_reuse,
    supported_genetic_code,
)


def command(
    vcf: Path = typer.Argument(
        ..., help="Variants: VCF (.vcf, .vcf.gz) or BCF; - reads standard input.",
        callback=input_file,
    ),
    reference: Path = typer.Option(
        ..., "--reference", "-r", help="Reference genome FASTA (plain, gz, xz, bz2).",
        callback=input_file,
    ),
    model: str = common.ModelOption,
    config: str = common.ConfigOption,
    seed: int = common.SeedOption,
    output: str = common.output_option(
        "out.vcf, out.vcf.gz (bgzipped + tabix) or out.tsv (default: VCF on stdout)."
    ),
    window: int = common.window_option("Window length centred on each variant (nt)."),
    reverse_complement: bool = common.ReverseComplementOption,
    circular: bool = common.circular_option(),
    chrom_map: Path = common.chrom_map_option("VCF"),
    strict: bool = typer.Option(
        False, "--strict", help="A REF allele that disagrees with the FASTA is an error."
    ),
    batch_size: int = common.ScoringBatchSizeOption,
    device: str = common.DeviceOption,
    prefix_reuse: bool = common.PrefixReuseOption,
    downstream: int = common.DownstreamOption,
    precision: str = common.ScoringPrecisionOption,
    genome_stream: bool = typer.Option(
        False, "--genome-stream",
        help="Opt-in approximation for many variants per genome: run each strand once per "
        "--window stretch of the contig and continue every ALT from the reference state at "
        "its POS (with --downstream, default window/2); fidelity and speed in "
        "docs/score-variants.md.",
    ),
    workers: int = common.WorkersOption,
    annotation: Path = typer.Option(
        None, "--annotation", "-a",
        help="GFF3 or GenBank annotation of the reference: add each ALT's gene, consequence "
        "and protein change (INFO DNAHNET_GENE/CSQ/AA, TSV columns) and the LLR per "
        "consequence to the summary.",
        callback=input_file,
    ),
    upstream: int = typer.Option(
        None, "--upstream", help="With --annotation: nt before a gene's start (on its strand) "
        "that count as upstream  [default: 200]", callback=at_least(0),
    ),
    genetic_code: int = typer.Option(
        None, "--genetic-code",
        help="With --annotation: NCBI genetic code for every CDS (default: the annotation's "
        "transl_table, else 11).",
        callback=supported_genetic_code,
    ),
) -> None:
    """Score SNVs, MNVs and indels: LLR = log P(ALT window) - log P(REF window)."""
    import shlex
    import sys

    from dnahnet_core.io.contigs import read_chrom_map
    from dnahnet_core.progress import log
    from dnahnet_core.tasks.variants import DEFAULT_UPSTREAM, ScoreOptions, score_vcf

    stream_keeps_prefix_reuse(genome_stream, prefix_reuse)
    if annotation is None:
        for name, value in (("--upstream", upstream), ("--genetic-code", genetic_code)):
            if value is not None:
                raise typer.BadParameter("needs --annotation (it applies to the annotation's "
                                         "genes)", param_hint=f"'{name}'")
    options = ScoreOptions(
        window=window, reverse_complement=reverse_complement, circular=circular,
        strict=strict, batch_size=batch_size, prefix_reuse=prefix_reuse, downstream=downstream,
        precision=precision, genome_stream=genome_stream, workers=workers,
        upstream=DEFAULT_UPSTREAM if upstream is None else upstream, genetic_code=genetic_code,
    )
    summary = score_vcf(
        vcf, reference, output, common.model_source(model, config, seed), options=options,
        device=device, chrom_map=read_chrom_map(chrom_map) if chrom_map else None,
        command_line="dnahnet " + shlex.join(sys.argv[1:]), annotation=annotation,
    )
    for line in summary.lines():
        log(line)
