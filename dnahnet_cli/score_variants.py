"""`dnahnet score-variants`: log-likelihood ratio of every ALT allele of a VCF."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer


def command(
    vcf: Path = typer.Argument(..., help="Variants: VCF (.vcf, .vcf.gz) or BCF."),
    reference: Path = typer.Option(
        ..., "--reference", "-r", help="Reference genome FASTA (plain, gz, xz, bz2)."
    ),
    model: str = typer.Option(None, "--model", "-m", help="Model directory or preset name."),
    output: str = typer.Option(
        None, "--output", "-o", help="out.vcf, out.vcf.gz (bgzipped + tabix) or out.tsv "
        "(default: VCF on stdout).",
    ),
    window: int = typer.Option(
        8192, "--window", help="Window length centred on each variant (nt)."
    ),
    reverse_complement: bool = typer.Option(
        True, "--reverse-complement/--no-reverse-complement",
        help="Average the LLR of both strands.",
    ),
    circular: bool = typer.Option(
        False, "--circular", help="Contigs are circular: windows wrap around the origin."
    ),
    chrom_map: Path = typer.Option(
        None, "--chrom-map", help="TSV: VCF contig name <tab> FASTA record name."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="A REF allele that disagrees with the FASTA is an error."
    ),
    batch_size: int = typer.Option(16, "--batch-size", help="Windows per forward pass."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    no_prefix_reuse: bool = typer.Option(
        False, "--no-prefix-reuse", help="Two full windows per allele (slower; for comparison)."
    ),
) -> None:
    """Score SNVs, MNVs and indels: LLR = log P(ALT window) - log P(REF window)."""
    from dnahnet_core.device import resolve_device
    from dnahnet_core.errors import DnahnetError
    from dnahnet_core.io.contigs import read_chrom_map
    from dnahnet_core.model import load_model
    from dnahnet_core.progress import log, progress
    from dnahnet_core.tasks.variants import ScoreOptions, count_records, score_vcf

    if batch_size < 1:
        raise DnahnetError(f"--batch-size {batch_size}: must be >= 1")
    if not vcf.exists():
        raise DnahnetError(f"{vcf}: no such file")
    if not reference.exists():
        raise DnahnetError(f"{reference}: no such file")
    mapping = read_chrom_map(chrom_map) if chrom_map else None
    torch_device = resolve_device(device)
    network = load_model(model, device=torch_device)
    options = ScoreOptions(
        window=window, reverse_complement=reverse_complement, circular=circular,
        strict=strict, batch_size=batch_size, naive=no_prefix_reuse,
    )
    command_line = "dnahnet " + shlex.join(sys.argv[1:])
    total = count_records(vcf)
    with progress("variants") as bar:
        task = bar.add_task("scoring variants", total=total, rate="")
        summary = score_vcf(
            vcf, reference, output, network, options=options, device=torch_device,
            chrom_map=mapping, model_name=model or "default", command_line=command_line,
            on_progress=lambda n: bar.advance(task, n),
        )
    for line in summary.lines():
        log(line)
