"""`dnahnet generate`: sample a continuation of a prompt with the cached step function."""

from __future__ import annotations

import typer

from dnahnet_cli.common import ConfigOption, DeviceOption, ModelOption, SeedOption


def command(
    prompt: str = typer.Option(
        "", "--prompt", "-p", help="Nucleotides to continue (may be empty)."
    ),
    length: int = typer.Option(500, "-n", "--length", help="Number of nucleotides to generate."),
    temperature: float = typer.Option(1.0, "--temperature", "-t"),
    top_k: int = typer.Option(0, "--top-k", help="Sample among the k most likely (0: all)."),
    sample_seed: int = typer.Option(0, "--sample-seed", help="Seed of the sampler."),
    model: str = ModelOption,
    config: str = ConfigOption,
    seed: int = SeedOption,
    device: str = DeviceOption,
) -> None:
    """Print the prompt and its continuation as FASTA."""
    import textwrap

    from dnahnet_cli.common import load_model_for_command
    from dnahnet_core.tasks.generate import generate

    lm, target = load_model_for_command(model, config, seed, device)
    new = generate(
        lm, prompt, length, temperature=temperature, top_k=top_k, seed=sample_seed, device=target
    )
    typer.echo(f">generated prompt_length={len(prompt)} new={length} temperature={temperature}")
    typer.echo("\n".join(textwrap.wrap(prompt.upper() + new, 80)))
