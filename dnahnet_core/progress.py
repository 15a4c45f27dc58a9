"""Progress reporting: a rich bar on an interactive terminal, quiet when piped.

Everything goes to stderr, so commands that stream data on stdout stay clean.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

stderr_console = Console(stderr=True, soft_wrap=True)  # never wrap plain log lines


class _Quiet:
    """The Progress interface, doing nothing (non-interactive runs)."""

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def update(self, *args, **kwargs) -> None:
        pass

    def advance(self, *args, **kwargs) -> None:
        pass


def interactive() -> bool:
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress(kind: str = "items", enabled: bool | None = None) -> Iterator:
    """A progress display; ``kind`` is "bytes" (with throughput) or an item unit name."""
    if enabled is None:
        enabled = interactive()
    if not enabled:
        yield _Quiet()
        return
    if kind == "bytes":
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        ]
    else:
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
    with Progress(*columns, console=stderr_console, transient=False) as bar:
        yield bar


@contextlib.contextmanager
def counter(
    kind: str,
    description: str,
    total: int | None = None,
    rate: Callable[[int, float], str] | None = None,
    enabled: bool | None = None,
) -> Iterator[Callable[[int], None]]:
    """A bar counting ``kind`` items; yields ``advance(n)``. ``rate(done, seconds)`` gives
    the text shown beside the bar, e.g. ``lambda n, s: f"{n / s:.2f} genes/s"``."""
    with progress(kind, enabled) as bar:
        task = bar.add_task(description, total=total, rate="")
        started, done = time.perf_counter(), 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if rate is None:
                bar.update(task, advance=n)
            else:
                seconds = max(time.perf_counter() - started, 1e-9)
                bar.update(task, advance=n, rate=rate(done, seconds))

        yield advance


def log(message: str) -> None:
    """A plain status line on stderr."""
    stderr_console.print(message, highlight=False, markup=False)
