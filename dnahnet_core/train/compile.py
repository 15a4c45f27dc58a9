"""``--compile``: what the training step runs through ``torch.compile`` (one place to change it).

The compiled module shares its parameters with the model, so the optimizer, gradient
clipping, checkpoints and validation keep using the plain model.
"""

from __future__ import annotations

import torch
from torch import nn


def compiled_for_training(module: nn.Module) -> nn.Module:
    """The module the training step calls for its forward pass, compiled."""
    return torch.compile(module)
