"""`dnahnet generate`: sample a continuation of a prompt with the cached step function."""

from __future__ import annotations

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import above, between, seed_range

MAX_LENGTH = 10_000_000  # nucleotides per call: a few bacterial genomes


def command(
    prompt: str = typer.Option(
        "", "--prompt", "-p", help="Nucleotides to continue (may be empty)."
    ),
    length: int = typer.Option(
        500, "-n", "--length", help="Number of nucleotides to generate.",
        callback=between(1, MAX_LENGTH),
    ),
    temperature: float = typer.Option(
        1.0, "--temperature", "-t", help="Sampling temperature (> 0).", callback=above(0)
    ),
    top_k: int = typer.Option(
        0, "--top-k", help="Sample among the k most likely (0: all; at most 5, the alphabet).",
        callback=between(0, 5),
    ),
    sample_seed: int = typer.Option(
        0, "--sample-seed", help="Seed of the sampler.", callback=seed_range
    ),
    model: str = common.ModelOption,
    config: str = common.ConfigOption,
    seed: int = common.SeedOption,
    device: str = common.DeviceOption,
) -> None:
    """Print the prompt and its continuation as FASTA."""
    from dnahnet_core.alphabet import decode, encode
    from dnahnet_core.io.fasta import fasta_text
    from dnahnet_core.tasks.generate import generate

    new = generate(
        common.model_source(model, config, seed), prompt, length, temperature=temperature,
        top_k=top_k, seed=sample_seed, device=device,
    )
    name = f"generated prompt_length={len(prompt)} new={length} temperature={temperature}"
    conditioned = decode(encode(prompt))  # what the model read: ambiguity codes as N
    typer.echo(fasta_text(name, conditioned + new), nl=False)
