"""``--compile``: what the training step runs through ``torch.compile`` (one place to change it).

The compiled module shares its parameters with the model, so the optimizer, gradient
clipping, checkpoints and validation keep using the plain model.
"""

from __future__ import annotations

import torch
from torch import nn


def compiled_for_training(module: nn.Module, device: torch.device) -> nn.Module:
    """The module the training step calls for its forward pass, compiled.

    On a GPU: the whole module. On a CPU: only the Mamba2 layers' full-length blocks
    (``MambaLayer.compile_cpu_blocks``), whose shapes repeat; dnaHNet's inner lengths
    change with every batch, and a whole-model graph recompiles or goes dynamic, which
    inductor's CPU code runs no faster than eager (docs/benchmarks.md).
    """
    if device.type != "cpu":
        return torch.compile(module)
    from dnahnet_core.model.blocks import MambaLayer

    for layer in module.modules():
        if isinstance(layer, MambaLayer):
            layer.compile_cpu_blocks()
    return module
