"""Stops (Ctrl-C, SIGTERM) in a process that loads torch and starts worker processes.

Ctrl-C ends a command with status 130 and no traceback, SIGTERM with 143 and one line
(``dnahnet_cli.app.run``); both raise an exception in the main thread so that every
``with`` block unwinds and temporary names go. What would otherwise break that:

- torch's own start-up (``stops_raise`` holds Ctrl-C while torch is imported);
- worker processes, which a terminal's Ctrl-C reaches too: it goes to the whole
  foreground process group (``workers_ignore_ctrl_c``);
- a library whose C code calls back into Python, catches the stop's exception there and
  raises one of its own (safetensors loading weights through torch raises ValueError):
  the stop is remembered (``stop_received``), so it still ends the command as a stop;
- a stop between two steps that must happen together (``stops_deferred``).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

RETRY_SECONDS = 0.05

_received: list[int] = []  # the stop signals of the running command (``stops_raise``)


class Terminated(BaseException):
    """SIGTERM arrived; raised in the main thread so cleanup code runs (not an Exception)."""


def _torch_is_loading() -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and bool(getattr(torch.__spec__, "_initializing", False))


def _interrupt(signum, frame) -> None:
    if _torch_is_loading():  # try again shortly, until torch has loaded
        threading.Timer(RETRY_SECONDS, signal.raise_signal, (signum,)).start()
        return
    _received.append(signum)
    raise KeyboardInterrupt


def _terminate(signum, frame) -> None:
    _received.append(signum)
    raise Terminated


@contextlib.contextmanager
def stops_raise() -> Iterator[None]:
    """Within the block SIGTERM raises ``Terminated`` and Ctrl-C ``KeyboardInterrupt``, and
    ``stop_received`` names the first stop (main thread only).

    Ctrl-C waits while torch is being imported: a KeyboardInterrupt raised while torch's
    C++ start-up calls back into Python ends in ``std::terminate`` (SIGABRT, "terminate
    called after throwing an instance of pybind11::error_already_set"), not in the
    command's usual exit. A Ctrl-C ignored when the block begins (a shell script's
    background job) stays ignored.
    """
    _received.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _terminate)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stop_received() -> int | None:
    """The first stop signal received in the last ``stops_raise`` block, if any."""
    return _received[0] if _received else None


@contextlib.contextmanager
def stops_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends, then arrive as usual (main thread).

    Blocked, not ignored: a signal sent meanwhile is delivered when the block ends, so
    the exception it raises leaves the block's assignments done. Keep blocks short.
    """
    with _held({signal.SIGINT, signal.SIGTERM}):
        yield


@contextlib.contextmanager
def _held(signums: set[int]) -> Iterator[None]:
    """``signums`` wait until the block ends, then arrive as usual (main thread only).

    Blocked in this thread, and so in the processes it starts (they inherit the mask).
    That alone is not enough: the kernel gives a signal sent to the process to any thread
    that does not block it (torch's, a progress bar's), and Python then runs the handler
    in the main thread all the same. So the handlers also only note what arrives, and
    it is raised again once the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    handlers = {signum: signal.getsignal(signum) for signum in signums}
    for signum, handler in handlers.items():
        if callable(handler):  # an ignored or default disposition stays as it is
            signal.signal(signum, lambda number, frame: arrived.append(number))
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signums)
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            if callable(handler):
                signal.signal(signum, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # one held by the mask: now
        for signum in dict.fromkeys(arrived):
            signal.raise_signal(signum)


@contextlib.contextmanager
def workers_ignore_ctrl_c() -> Iterator[None]:
    """Processes started in this block never receive Ctrl-C; this process handles it
    (ending its pool of workers on the way out).

    Ctrl-C is held during the block (``_held``): blocked in this thread, and a blocked
    signal stays blocked across fork and exec and Python leaves it so, which covers a
    spawned worker's own start-up too (there a Ctrl-C prints Python's fatal start-up
    traceback, or aborts inside torch's); and one that another thread of this process
    receives waits as well (raised while the pool was writing a new worker's start-up
    data, it left that worker to print "EOFError: Ran out of input"). Held, not ignored:
    a Ctrl-C that arrives meanwhile is not lost, it is delivered here once the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # the pool's first lock starts multiprocessing's resource tracker, whose launch
    # unblocks SIGINT here: start it first (imported here: not every command has workers)
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    with _held({signal.SIGINT}):
        yield
