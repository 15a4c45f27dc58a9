"""`dnahnet evaluate`: bits per nucleotide (and compression per stage) of a model on a split."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    model: str = typer.Option(..., "--model", "-m", help="Model or run directory (or a preset)."),
    data: Path = typer.Option(..., "--data", help="Prepared dataset (`dnahnet prepare`)."),
    split: str = typer.Option("test", "--split", help="train, val or test."),
    batch_size: int = typer.Option(8, "--batch-size", help="Fragments per batch."),
    max_fragments: int = typer.Option(None, "--max-fragments", help="Score only the first N."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    precision: str = typer.Option("auto", "--precision", help="auto, fp32 or bf16."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Report bits per nucleotide on a dataset split (the metric of training's validation)."""
    import json

    from dnahnet_core.data.dataset import FragmentDataset
    from dnahnet_core.device import resolve_device
    from dnahnet_core.errors import DnahnetError
    from dnahnet_core.model import load_model
    from dnahnet_core.progress import progress
    from dnahnet_core.train.evaluate import evaluate_split
    from dnahnet_core.train.precision import resolve_precision

    if not data.is_dir():
        raise DnahnetError(f"--data {data}: no such directory")
    dataset = FragmentDataset(data, split)
    if len(dataset) == 0:
        raise DnahnetError(f"--data {data}: the {split} split is empty")
    torch_device = resolve_device(device)
    net = load_model(model, device=torch_device)
    chosen = resolve_precision(precision, torch_device)
    total = len(dataset) if max_fragments is None else min(max_fragments, len(dataset))
    with progress("fragments") as bar:
        task = bar.add_task(f"evaluating {split}", total=total, rate="")
        result = evaluate_split(net, dataset, batch_size=batch_size, device=torch_device,
                                precision=chosen, max_fragments=max_fragments,
                                on_batch=lambda n: bar.advance(task, n))
    result = {"model": str(model), "split": split, **result}
    if json_out:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"{split}: {result['bpb']:.4f} bits per nucleotide "
               f"({result['fragments']} fragments, {result['nucleotides']:,} nt)")
    stage = 0
    while f"compression_{stage}" in result:
        typer.echo(f"  stage {stage}: L/L' {result[f'compression_{stage}']:.2f}, "
                   f"mean boundary probability {result[f'mean_prob_{stage}']:.3f}")
        stage += 1
