"""`dnahnet embed`: hidden states of one level of the hierarchy, per nucleotide, per chunk
or mean-pooled, for FASTA records or BED regions of a genome."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import at_least, input_file, output_file


class Pool(str, Enum):
    none = "none"
    chunks = "chunks"
    mean = "mean"


class Dtype(str, Enum):
    float32 = "float32"
    float16 = "float16"


def embedding_file(value: Path | None) -> Path | None:
    """-o: a writable file whose suffix names a format this installation can write."""
    from dnahnet_core.io.embeddings import check_output_format

    if value is not None:
        output_file(value)
        check_output_format(value)
    return value


def command(
    fasta: Path = typer.Argument(
        None, help="FASTA of the sequences to embed (plain, gz, xz or bz2); - reads standard "
        "input. Or give --regions and --genome.",
        callback=input_file,
    ),
    output: Path = typer.Option(
        ..., "--output", "-o",
        help="Embedding file: .npz, .parquet or .h5 (the suffix picks the format).",
        callback=embedding_file,
    ),
    regions: Path = typer.Option(
        None, "--regions", help="BED of genome regions to embed, each alone (a region on the "
        "- strand is embedded as its reverse complement).",
        callback=input_file,
    ),
    genome: Path = typer.Option(
        None, "--genome", "-g", help="Genome FASTA the --regions refer to.", callback=input_file
    ),
    stage: int = typer.Option(
        0, "--stage", help="0: the outer encoder, one vector per nucleotide; s >= 1: the "
        "network that reads stage s's chunks, one vector per chunk (see docs/embed.md).",
        callback=at_least(0),
    ),
    pool: Pool = typer.Option(
        Pool.none, "--pool", help="none: one row per nucleotide; chunks: one row per chunk of "
        "--stage (>= 1); mean: one row per sequence or region.",
    ),
    dtype: Dtype = typer.Option(Dtype.float32, "--dtype", help="Values written."),
    model: str = common.ModelOption,
    config: str = common.ConfigOption,
    seed: int = common.SeedOption,
    context: int = common.context_option("Minimum left context per position of long sequences."),
    batch_size: int = common.ScoringBatchSizeOption,
    device: str = common.DeviceOption,
) -> None:
    """Embeddings of sequences or genome regions from any level of the hierarchy."""
    from dnahnet_core.progress import log
    from dnahnet_core.tasks.embeddings import write_embeddings

    summary = write_embeddings(
        fasta, output, common.model_source(model, config, seed), regions=regions,
        genome=genome, stage=stage, pool=pool.value, context=context, batch_size=batch_size,
        device=device, dtype=dtype.value,
    )
    for line in summary.lines():
        log(line)
