"""Options and helpers shared by the command modules."""

from __future__ import annotations

import typer

MODEL_HELP = (
    "Model directory (config.json + model.safetensors). Default: the model shipped with dnahnet."
)
ModelOption = typer.Option(None, "--model", "-m", help=MODEL_HELP)
ConfigOption = typer.Option(
    None, "--config", help="Build an untrained model from this preset or config.json instead."
)
SeedOption = typer.Option(0, "--seed", help="Seed for --config (untrained weights).")
DeviceOption = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")


def load_model_for_command(model: str | None, config: str | None, seed: int, device: str):
    """The model a scoring command uses: --config builds one, else --model or the default."""
    from dnahnet_core.device import resolve_device
    from dnahnet_core.errors import DnahnetError
    from dnahnet_core.model import build_model, load_config, load_model

    target = resolve_device(device)
    if config is not None:
        if model is not None:
            raise DnahnetError("give either --model or --config, not both")
        return build_model(load_config(config), seed=seed).to(target).eval(), target
    return load_model(model, device=target), target
