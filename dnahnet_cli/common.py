"""Options shared by the command modules: one definition of each flag, reused by every command.

Every command that runs a model takes ``--model``, ``--config``, ``--seed`` and
``--device`` and hands ``model_source(model, config, seed)`` to its library function,
which loads the model (``dnahnet_core.model_source``) once its inputs are checked.
``train`` reuses the same flags with a default of None ("the run's saved value on
--resume"), hence the factories.
"""

from __future__ import annotations

import typer

from dnahnet_cli.validate import (
    at_least,
    device_name,
    input_file,
    output_file,
    seed_range,
    up_to_cpus,
)


def config_option(
    help: str = "Build an untrained model from this preset or config.json instead.",
):
    return typer.Option(None, "--config", "-c", help=help)


def seed_option(default: int | None = 0, help: str = "Seed of the untrained weights of --config."):
    return typer.Option(default, "--seed", help=help, callback=seed_range)


def device_option(default: str = "auto"):
    return typer.Option(
        default, "--device", help="auto (CUDA when present), cpu, cuda or cuda:N.",
        callback=device_name,
    )


def batch_size_option(default: int | None, help: str = "Windows per forward pass."):
    return typer.Option(default, "--batch-size", help=help, callback=at_least(1))


def precision_option(
    default: str | None, help: str = "auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16."
):
    return typer.Option(default, "--precision", help=help)


def output_option(help: str):
    """A file output; '-' is standard output (checked before any work is done)."""
    return typer.Option(None, "--output", "-o", help=help, callback=output_file)


def window_option(help: str, default: int = 8192):
    return typer.Option(default, "--window", help=help, callback=at_least(2))


def context_option(help: str, default: int = 8192):
    return typer.Option(default, "--context", help=help, callback=at_least(1))


def circular_option(help: str = "Contigs are circular: windows wrap around the origin."):
    return typer.Option(False, "--circular", help=help)


def chrom_map_option(names: str):
    return typer.Option(
        None, "--chrom-map", help=f"TSV: {names} contig name <tab> FASTA record name.",
        callback=input_file,
    )


ModelOption = typer.Option(
    None, "--model", "-m",
    help="Model directory (config.json + model.safetensors) or preset name. "
    "Default: the model shipped with dnahnet.",
)
ConfigOption = config_option()
SeedOption = seed_option()
DeviceOption = device_option()
ReverseComplementOption = typer.Option(
    True, "--reverse-complement/--no-reverse-complement",
    help="Average the scores of both strands (forward and reverse complement).",
)
ScoringBatchSizeOption = batch_size_option(
    None, "Windows per forward pass (default: on a CPU as many as fill 4,096 positions, one "
    "long window at a time, where batching long windows measured slower; 64 on a GPU).",
)
WorkersOption = typer.Option(
    1, "--workers", help="CPU worker processes, one torch thread each (results identical, "
    "in input order); one per CPU core, faster than torch's threads in one process.",
    callback=up_to_cpus(1),
)
ScoringPrecisionOption = typer.Option(
    "fp32", "--precision",
    help="fp32 (the exact protocol) or bf16 (opt-in, faster; fidelity in docs/benchmarks.md).",
)
DownstreamOption = typer.Option(
    None, "--downstream", metavar="N",
    help="Opt-in approximation: sum each window only up to N nt after the change (full left "
    "context); equal to the exact score when N >= --window. Fidelity in docs/benchmarks.md.",
    callback=at_least(1),
)
PrefixReuseOption = typer.Option(
    True, "--prefix-reuse/--no-prefix-reuse",
    help="Compute the positions all alleles share once (exact); --no-prefix-reuse scores "
    "full windows (slower; for comparison).",
)


def model_source(model: str | None, config: str | None, seed: int):
    """The model the shared options name (loaded later, by the library function)."""
    from dnahnet_core.model_source import ModelSource

    return ModelSource(model=model, config=config, seed=seed)
