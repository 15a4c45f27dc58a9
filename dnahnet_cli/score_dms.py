"""`dnahnet score-dms`: score MaveDB score sets in genomic context and correlate, beside the
trivial baselines."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import input_file, output_file, supported_genetic_code


class Damaging(str, Enum):
    low = "low"
    high = "high"


def command(
    scores: Path = typer.Argument(
        None, help="MaveDB score-set CSV (hgvs_nt or hgvs_pro, score); or give --manifest.",
        callback=input_file,
    ),
    sequence: Path = typer.Option(
        None, "--sequence", "-s", help="FASTA with one record: the genomic context of the CDS.",
        callback=input_file,
    ),
    cds: str = typer.Option(
        None, "--cds",
        help="CDS in the context: START-END[:STRAND], 1-based closed, e.g. 201-1100:+",
    ),
    manifest: Path = typer.Option(
        None, "--manifest",
        help="TSV of several assays instead of SCORES/--sequence/--cds: a header naming scores, "
        "sequence, cds and optionally name, score_column, genetic_code, damaging (the options "
        "below are the defaults of missing cells). Per-assay and macro-averaged Spearman.",
        callback=input_file,
    ),
    output: Path = typer.Option(
        None, "--output", "-o", help="Per-variant TSV (- for standard output); required.",
        callback=output_file,
    ),
    model: str = common.ModelOption,
    config: str = common.ConfigOption,
    seed: int = common.SeedOption,
    window: int = common.window_option("Window centred on each variant (nt)."),
    reverse_complement: bool = common.ReverseComplementOption,
    prefix_reuse: bool = common.PrefixReuseOption,
    score_column: str = typer.Option("score", "--score-column", help="Experimental score column."),
    genetic_code: int = typer.Option(
        11, "--genetic-code",
        help="NCBI genetic code of the CDS: 11 (bacteria), 4 (Mycoplasma: TGA = Trp), 1, 25.",
        callback=supported_genetic_code,
    ),
    damaging: Damaging = typer.Option(
        Damaging.low, "--damaging",
        help="Which experimental scores mean damaging: low (MaveDB's usual: loss of function "
        "scores low) or high. Correlations use the scores oriented higher = fitter.",
    ),
    metrics: Path = typer.Option(
        None, "--metrics", help="Also write the correlations (per assay, macro) as JSON.",
        callback=output_file,
    ),
    batch_size: int = common.ScoringBatchSizeOption,
    device: str = common.DeviceOption,
    downstream: int = common.DownstreamOption,
    precision: str = common.ScoringPrecisionOption,
    workers: int = common.WorkersOption,
) -> None:
    """LLR of every variant; Spearman and Pearson with the experimental scores, beside the
    amino-acid-change count and BLOSUM62 baselines."""
    from dnahnet_core.progress import log
    from dnahnet_core.tasks.dms import dms_assays, score_dms

    single = {"SCORES": scores, "--sequence": sequence, "--cds": cds}
    if manifest is not None and any(v is not None for v in single.values()):
        raise typer.BadParameter("give SCORES --sequence --cds or --manifest, not both")
    missing = [name for name, value in single.items() if value is None and manifest is None]
    if output is None:
        missing.append("--output/-o")
    if missing:
        raise typer.BadParameter(f"missing {', '.join(missing)} (SCORES --sequence --cds "
                                 "may be replaced by --manifest)")

    assays = dms_assays(
        scores, sequence, cds, manifest, score_column=score_column, genetic_code=genetic_code,
        damaging=damaging.value,
    )
    summary = score_dms(
        assays, output, common.model_source(model, config, seed), window=window,
        reverse_complement=reverse_complement, prefix_reuse=prefix_reuse,
        batch_size=batch_size, device=device, metrics=metrics, downstream=downstream,
        precision=precision, workers=workers,
    )
    for line in summary.lines():
        log(line)
