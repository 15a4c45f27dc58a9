"""Mixed precision: bf16 autocast on CUDA, fp32 on CPU (unless asked otherwise)."""

from __future__ import annotations

import contextlib

import torch

from dnahnet_core.errors import DnahnetError

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(name: str, device: torch.device) -> str:
    if name not in PRECISIONS:
        raise DnahnetError(f"--precision {name}: expected one of {', '.join(PRECISIONS)}")
    if name == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DnahnetError("--precision bf16: this GPU does not support bfloat16")
    return name


def autocast(device: torch.device, precision: str):
    """A context that runs the forward pass in ``precision`` (fp32: a no-op)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
