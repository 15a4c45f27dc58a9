"""`dnahnet evaluate`: bits per nucleotide (and compression per stage) of a model on a split."""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import at_least


def command(
    model: str = common.ModelOption,
    config: str = common.ConfigOption,
    seed: int = common.SeedOption,
    data: Path = typer.Option(..., "--data", help="Prepared dataset (`dnahnet prepare`)."),
    split: str = typer.Option("test", "--split", help="train, val or test."),
    batch_size: int = common.batch_size_option(8, "Fragments per batch."),
    max_fragments: int = typer.Option(
        None, "--max-fragments", help="Score only the first N.", callback=at_least(1)
    ),
    device: str = common.DeviceOption,
    precision: str = common.precision_option("auto"),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Report bits per nucleotide on a dataset split (the metric of training's validation)."""
    import json

    from dnahnet_core.data.markov import baseline_lines
    from dnahnet_core.train.evaluate import evaluate_dataset

    source = common.model_source(model, config, seed)
    result = evaluate_dataset(
        source, data, split, batch_size=batch_size, device=device, precision=precision,
        max_fragments=max_fragments,
    )
    result = {"model": source.name, "split": split, **result}
    if json_out:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"{split}: {result['bpb']:.4f} bits per nucleotide "
               f"({result['fragments']} fragments, {result['nucleotides']:,} nt)")
    for line in baseline_lines(result["baselines"], result.get("baselines_note")):
        typer.echo(f"  {line}")
    stage = 0  # the JSON counts stages from 0 like metrics.jsonl; people say stage 1, 2
    while f"compression_{stage}" in result:
        typer.echo(f"  stage {stage + 1}: L/L' {result[f'compression_{stage}']:.2f}, "
                   f"mean boundary probability {result[f'mean_prob_{stage}']:.3f}")
        stage += 1
