"""`dnahnet generate`: sample a continuation of a prompt with the cached step function."""

from __future__ import annotations

import typer

from dnahnet_cli import common


def command(
    prompt: str = typer.Option(
        "", "--prompt", "-p", help="Nucleotides to continue (may be empty)."
    ),
    length: int = typer.Option(500, "-n", "--length", help="Number of nucleotides to generate."),
    temperature: float = typer.Option(1.0, "--temperature", "-t"),
    top_k: int = typer.Option(0, "--top-k", help="Sample among the k most likely (0: all)."),
    sample_seed: int = typer.Option(0, "--sample-seed", help="Seed of the sampler."),
    model: str = common.ModelOption,
    config: str = common.ConfigOption,
    seed: int = common.SeedOption,
    device: str = common.DeviceOption,
) -> None:
    """Print the prompt and its continuation as FASTA."""
    from dnahnet_core.io.fasta import fasta_text
    from dnahnet_core.tasks.generate import generate

    new = generate(
        common.model_source(model, config, seed), prompt, length, temperature=temperature,
        top_k=top_k, seed=sample_seed, device=device,
    )
    name = f"generated prompt_length={len(prompt)} new={length} temperature={temperature}"
    typer.echo(fasta_text(name, prompt.upper() + new), nl=False)
