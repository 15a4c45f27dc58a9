"""Which model a command runs: the one loader behind ``--model``, ``--config`` and ``--seed``.

    source = ModelSource(model=None, config=None, seed=0)
    network, device = ready_model(source, "auto")      # a loaded nn.Module works too

``--config`` builds an untrained model from a preset or config.json (weights seeded by
``--seed``); otherwise ``--model`` names a model directory (or a preset, seed 0) and
None is the model shipped with the package. Library functions that run a model take
either a ``ModelSource`` or a loaded module and call ``ready_model`` once their inputs
are read and checked, so a bad input fails before the model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dnahnet_core.device import resolve_device
from dnahnet_core.errors import DnahnetError


@dataclass(frozen=True)
class ModelSource:
    model: str | None = None  # model directory or preset name; None: the packaged default
    config: str | None = None  # preset name or config.json: an untrained model
    seed: int = 0  # seed of the untrained weights of ``config``

    def __post_init__(self) -> None:
        if self.model is not None and self.config is not None:
            raise DnahnetError("give either --model or --config, not both")

    @property
    def name(self) -> str:
        """How output files name the model (e.g. the ##dnahnet_model VCF header line)."""
        if self.config is not None:
            return f"{self.config} (untrained, seed {self.seed})"
        return self.model or "default"

    def load(self, device: torch.device) -> torch.nn.Module:
        from dnahnet_core.model import build_model, load_config, load_model

        if self.config is not None:
            untrained = build_model(load_config(self.config), seed=self.seed, where=self.config)
            return untrained.to(device).eval()
        return load_model(self.model, device=device).eval()


def ready_model(
    model: ModelSource | torch.nn.Module, device: str | torch.device | None = "auto"
) -> tuple[torch.nn.Module, torch.device]:
    """The model on the device it will run on, in eval mode, and that device (``auto`` or
    None: CUDA when present). A loaded module is moved there: a CPU-built model given to a
    library function on a GPU machine runs on the GPU, with its inputs."""
    target = resolve_device(device)
    if isinstance(model, ModelSource):
        return model.load(target), target
    return model.to(target).eval(), target
