"""`dnahnet score-variants`: log-likelihood ratio of every ALT allele of a VCF."""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import input_file


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
    batch_size: int = common.batch_size_option(16),
    device: str = common.DeviceOption,
    prefix_reuse: bool = common.PrefixReuseOption,
) -> None:
    """Score SNVs, MNVs and indels: LLR = log P(ALT window) - log P(REF window)."""
    import shlex
    import sys

    from dnahnet_core.io.contigs import read_chrom_map
    from dnahnet_core.progress import log
    from dnahnet_core.tasks.variants import ScoreOptions, score_vcf

    options = ScoreOptions(
        window=window, reverse_complement=reverse_complement, circular=circular,
        strict=strict, batch_size=batch_size, prefix_reuse=prefix_reuse,
    )
    summary = score_vcf(
        vcf, reference, output, common.model_source(model, config, seed), options=options,
        device=device, chrom_map=read_chrom_map(chrom_map) if chrom_map else None,
        command_line="dnahnet " + shlex.join(sys.argv[1:]),
    )
    for line in summary.lines():
        log(line)
