"""Choosing the torch device, and the process's memory habits.

torch is imported inside ``resolve_device``: ``dnahnet_cli`` calls ``keep_freed_memory``
before any command, and ``dnahnet --help`` should not wait 1-2 s for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dnahnet_core.errors import DnahnetError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) picks CUDA when available, else CPU; 'cuda' without a GPU is a
    user error. A torch.device is taken as it is."""
    import torch

    if isinstance(name, torch.device):
        return name
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DnahnetError(f"--device {name}: CUDA is not available on this machine")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise DnahnetError(f"--device {name}: not a valid device ({error})") from None
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:  # else "invalid device ordinal", a traceback, later
            raise DnahnetError(f"--device {name}: this machine has {count} GPU"
                               f"{'s' if count > 1 else ''} (cuda:0 to cuda:{count - 1})")
    return device


def keep_freed_memory() -> None:
    """Ask glibc's malloc to reuse freed memory instead of handing it back to the OS.

    A forward pass allocates and frees many tensors of several MB. By default glibc maps
    each one afresh (and unmaps it on free), so every pass page-faults its way through
    hundreds of MB again: about 110,000 faults per 8,192-nt forward, 5-10 % of its time
    on a CPU. Keeping blocks up to 32 MiB in the heap and never trimming it removes
    them; the price is that the process keeps its peak heap until it exits. Linux/glibc
    only; elsewhere (or if the call fails) nothing changes.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)  # the largest value glibc accepts
    libc.mallopt(m_trim_threshold, 2**31 - 1)
    libc.mallopt(m_top_pad, 64 << 20)
