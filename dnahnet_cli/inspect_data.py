"""`dnahnet inspect`: the summary of a prepared dataset and a few decoded fragments."""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli.validate import at_least


def command(
    directory: Path = typer.Argument(..., help="A dataset directory from `dnahnet prepare`."),
    split: str = typer.Option("train", help="Split to show fragments from."),
    fragments: int = typer.Option(
        3, "--fragments", "-n", help="How many fragments to show.", callback=at_least(0)
    ),
    width: int = typer.Option(
        80, help="Nucleotides shown per fragment (0: all).", callback=at_least(0)
    ),
) -> None:
    """Print a prepared dataset's manifest summary and a few decoded fragments."""
    from dnahnet_core.alphabet import decode
    from dnahnet_core.data.dataset import FragmentDataset
    from dnahnet_core.data.prepare import summary

    dataset = FragmentDataset(directory, split)
    typer.echo(summary(dataset.manifest).rstrip())
    shown = min(fragments, len(dataset))
    typer.echo(f"first {shown} of {len(dataset)} {split} fragments:")
    for i in range(shown):
        tokens = dataset[i]
        text = decode(tokens if width <= 0 else tokens[:width])
        more = "…" if 0 < width < len(tokens) else ""
        typer.echo(f"  [{i}] {dataset.genome_of(i)} ({len(tokens)} nt) {text}{more}")
