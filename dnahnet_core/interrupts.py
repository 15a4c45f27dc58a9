"""Ctrl-C in a process that loads torch and starts worker processes.

Ctrl-C ends a command with status 130 and no traceback (``dnahnet_cli.app.run``). Two
places would otherwise break that: torch's own start-up, and worker processes, which a
terminal's Ctrl-C reaches too (it goes to the whole foreground process group).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

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


@contextlib.contextmanager
def workers_ignore_ctrl_c() -> Iterator[None]:
    """Processes started in this block never receive Ctrl-C; this process handles it
    (ending its pool of workers on the way out).

    Ctrl-C is blocked in this thread during the block. A blocked signal stays blocked
    across fork and exec and Python leaves it so, which covers a spawned worker's own
    start-up too (there a Ctrl-C prints Python's fatal start-up traceback, or aborts
    inside torch's). Blocked, not ignored: a Ctrl-C that arrives meanwhile is not lost,
    it is delivered here once the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # the pool's first lock starts multiprocessing's resource tracker, whose launch
    # unblocks SIGINT here: start it first (imported here: not every command has workers)
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
