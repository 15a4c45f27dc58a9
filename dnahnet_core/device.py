"""Choosing the torch device, and the process's habits around torch.

torch is imported inside ``resolve_device``: ``dnahnet_cli`` calls ``keep_freed_memory``
and ``hold_ctrl_c_while_torch_loads`` before any command, and ``dnahnet --help`` should
not wait 1-2 s for torch.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import TYPE_CHECKING

from dnahnet_core.errors import DnahnetError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when available, else CPU; 'cuda' without a GPU is a user error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DnahnetError(f"--device {name}: CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise DnahnetError(f"--device {name}: not a valid device ({error})") from None


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


RETRY_SECONDS = 0.05


def _torch_is_loading() -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and bool(getattr(torch.__spec__, "_initializing", False))


def _interrupt(signum, frame) -> None:
    if _torch_is_loading():  # try again shortly, until torch has loaded
        threading.Timer(RETRY_SECONDS, signal.raise_signal, (signum,)).start()
        return
    raise KeyboardInterrupt


def hold_ctrl_c_while_torch_loads() -> None:
    """Ctrl-C raises KeyboardInterrupt as usual, except while torch is being imported:
    then it waits until the import is over.

    A KeyboardInterrupt raised while torch's C++ start-up calls back into Python ends
    in ``std::terminate`` (SIGABRT, "terminate called after throwing an instance of
    pybind11::error_already_set"), not in the command's usual exit. Main thread only;
    a process started with Ctrl-C ignored (a shell script's background job) keeps it so.
    """
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupt)
