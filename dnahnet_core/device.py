"""Choosing the torch device."""

from __future__ import annotations

import torch

from dnahnet_core.errors import DnahnetError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when available, else CPU; 'cuda' without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DnahnetError(f"--device {name}: CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise DnahnetError(f"--device {name}: not a valid device ({error})") from None
