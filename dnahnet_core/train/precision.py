"""Mixed precision: bf16 autocast on CUDA, fp32 on CPU (unless asked otherwise)."""

from __future__ import annotations

import contextlib
import os

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


def exact_fp32() -> None:
    """Make fp32 on CUDA IEEE float32, as on a CPU, for the rest of the process.

    mamba-ssm's Triton kernels leave `tl.dot` at Triton's default precision, which on NVIDIA
    tensor cores is TF32 (10 mantissa bits: a relative error of about 4e-4 in the SSD scan,
    against 1e-6 for the pure path), and cuDNN's convolutions allow TF32 by default. Triton
    reads TRITON_F32_DEFAULT when it compiles a kernel, so a kernel compiled earlier in the
    process keeps its precision; a value the user set (e.g. tf32, for speed) is kept.
    """
    os.environ.setdefault("TRITON_F32_DEFAULT", "ieee")
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")  # cuBLAS: IEEE (torch's default)


def autocast(device: torch.device, precision: str):
    """A context that runs the forward pass in ``precision`` (fp32: IEEE float32)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if device.type == "cuda":
        exact_fp32()
    return contextlib.nullcontext()
