"""`dnahnet score-dms`: score a MaveDB score set in genomic context and correlate."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    scores: Path = typer.Argument(..., help="MaveDB score-set CSV (hgvs_nt or hgvs_pro, score)."),
    sequence: Path = typer.Option(
        ..., "--sequence", "-s", help="FASTA with one record: the genomic context of the CDS."
    ),
    cds: str = typer.Option(
        ..., "--cds", help="CDS in the context: START-END[:STRAND], 1-based closed, e.g. 201-1100:+"
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Per-variant TSV."),
    model: str = typer.Option(None, "--model", "-m", help="Model directory or preset name."),
    window: int = typer.Option(8192, "--window", help="Window centred on each variant (nt)."),
    reverse_complement: bool = typer.Option(
        True, "--reverse-complement/--no-reverse-complement", help="Average both strands."
    ),
    score_column: str = typer.Option("score", "--score-column", help="Experimental score column."),
    genetic_code: int = typer.Option(
        11, "--genetic-code", help="Codon table for hgvs_pro: 11 (standard) or 4 (Mycoplasma)."
    ),
    batch_size: int = typer.Option(16, "--batch-size", help="Windows per forward pass."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
) -> None:
    """LLR of every variant; Spearman and Pearson with the experimental scores."""
    from dnahnet_core.device import resolve_device
    from dnahnet_core.errors import DnahnetError
    from dnahnet_core.model import load_model
    from dnahnet_core.progress import log, progress
    from dnahnet_core.tasks.dms import score_dms

    if batch_size < 1:
        raise DnahnetError(f"--batch-size {batch_size}: must be >= 1")
    for path in (scores, sequence):
        if not path.exists():
            raise DnahnetError(f"{path}: no such file")
    torch_device = resolve_device(device)
    network = load_model(model, device=torch_device)
    with progress("sites") as bar:
        task = bar.add_task("scoring variants", total=None, rate="")
        summary = score_dms(
            scores,
            sequence,
            cds,
            output,
            network,
            window=window,
            reverse_complement=reverse_complement,
            score_column=score_column,
            genetic_code=genetic_code,
            batch_size=batch_size,
            device=torch_device,
            on_progress=lambda n: bar.advance(task, n),
        )
    for line in summary.lines():
        log(line)
