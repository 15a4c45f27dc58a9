"""`dnahnet model-info`: presets, parameters per component and stage, FLOPs per nucleotide."""

from __future__ import annotations

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import at_least


def command(
    config: str = common.config_option("Preset name, config.json or model directory."),
    list_presets: bool = typer.Option(False, "--list", help="List the bundled presets."),
    length: int = typer.Option(
        8192, "--length", "-L", help="Sequence length for FLOPs.", callback=at_least(1)
    ),
) -> None:
    """Describe a model configuration."""
    from rich.console import Console
    from rich.table import Table

    from dnahnet_core.errors import DnahnetError
    from dnahnet_core.model import build_model, load_config
    from dnahnet_core.model import list_presets as presets
    from dnahnet_core.model.flops import components, flops_per_nucleotide

    console = Console()
    if list_presets:
        if config is not None:
            raise DnahnetError("--list shows every preset; leave --config out, or leave "
                               "--list out to describe one")
        table = Table("preset", "stages", "parameters", "description")
        for name in presets():
            cfg = load_config(name)
            params = sum(p.numel() for p in build_model(cfg).parameters())
            table.add_row(name, str(cfg.num_stages), f"{params / 1e6:.2f} M", cfg.description)
        console.print(table)
        return
    if config is None:
        raise DnahnetError("give --config NAME (see --list)")
    cfg = load_config(config)
    model = build_model(cfg, where=config)
    table = Table("component", "level", "parameters", title=f"{cfg.name}: {cfg.arch_layout}")
    parts = components(model)
    for part in parts:
        table.add_row(part.name, str(part.level), f"{part.params:,}")
    table.add_row("total", "", f"{sum(p.params for p in parts):,}")
    console.print(table)
    flops = flops_per_nucleotide(model, length)
    ftable = Table(
        "level", "tokens per nt", "MFLOP per nt", title=f"forward FLOPs at L = {length:,}"
    )
    fraction = 1.0
    for level, value in flops["levels"].items():
        ftable.add_row(str(level), f"{fraction:.3f}", f"{value / 1e6:.3f}")
        if level < cfg.num_stages:
            fraction /= cfg.target_ratios[level]
    ftable.add_row("total", "", f"{flops['total'] / 1e6:.3f}")
    console.print(ftable)
