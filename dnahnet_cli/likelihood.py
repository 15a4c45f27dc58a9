"""`dnahnet likelihood`: log-likelihood of each FASTA record, optionally per position."""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli.common import ConfigOption, DeviceOption, ModelOption, SeedOption


def command(
    fasta: Path = typer.Argument(..., help="FASTA file (plain, gz, xz or bz2)."),
    output: Path = typer.Option(None, "--output", "-o", help="TSV to write (default: stdout)."),
    per_position: bool = typer.Option(
        False, "--per-position", help="One row per nucleotide with boundary probabilities."
    ),
    model: str = ModelOption,
    config: str = ConfigOption,
    seed: int = SeedOption,
    context: int = typer.Option(
        8192, "--context", help="Left context kept for every position of long sequences."
    ),
    batch_size: int = typer.Option(8, "--batch-size"),
    device: str = DeviceOption,
) -> None:
    """Log-likelihood (natural log) and bits per nucleotide of each sequence."""
    import contextlib
    import sys

    from dnahnet_cli.common import load_model_for_command
    from dnahnet_core.io.atomic import atomic_open
    from dnahnet_core.io.fasta import read_fasta
    from dnahnet_core.progress import progress
    from dnahnet_core.tasks import likelihood as lk

    if not fasta.exists():
        raise FileNotFoundError(2, "no such file", str(fasta))
    lm, target = load_model_for_command(model, config, seed, device)
    stages = lm.config.num_stages
    sink = atomic_open(output, "w") if output else contextlib.nullcontext(sys.stdout)
    with sink as out, progress("nt") as bar:
        task = bar.add_task("scoring", total=None, rate="")
        out.write(lk.per_position_header(stages) if per_position else lk.summary_header())
        records = ((r.id, r.sequence) for r in read_fasta(fasta))
        for result in lk.score_records(
            lm,
            records,
            context=context,
            batch_size=batch_size,
            device=target,
            on_progress=lambda n: bar.advance(task, n),
        ):
            if per_position:
                out.writelines(lk.per_position_rows(result))
            else:
                out.write(lk.summary_row(result))
