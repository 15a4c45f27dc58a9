"""Progress reporting: a rich bar on an interactive terminal, plain lines otherwise.

Everything goes to stderr, so commands that stream data on stdout stay clean. A
``counter`` shows the same on every long command: items done (of the total), the rate
(``kind``/s, or Mbp/min for nucleotides) and the time left. When stderr is not a
terminal (a log file, a cluster job) it prints that as one plain line every
``LOG_EVERY`` seconds instead (also while one item takes longer), so short runs stay
silent.
"""

from __future__ import annotations

import contextlib
import sys
import threading
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


LOG_EVERY = 60.0  # seconds between plain progress lines when stderr is not a terminal


def per_second(unit: str) -> Callable[[int, float], str]:
    """A ``rate`` for ``counter``: "12.34 variants/s"."""
    return lambda done, seconds: f"{done / seconds:.2f} {unit}/s"


def megabases_per_minute(done: int, seconds: float) -> str:
    """The ``rate`` of nucleotide counters: "0.220 Mbp/min"."""
    return f"{done / 1e6 / (seconds / 60):.3f} Mbp/min"


def default_rate(kind: str) -> Callable[[int, float], str]:
    return megabases_per_minute if kind == "nt" else per_second(kind)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


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
    the text shown beside the bar (default: ``default_rate(kind)``). Without a terminal
    (``enabled`` None and stderr not a TTY) a plain line every ``LOG_EVERY`` seconds."""
    rate = rate or default_rate(kind)
    plain = enabled is None and not interactive()
    with progress(kind, enabled) as bar:
        task = bar.add_task(description, total=total, rate="")
        started, done = time.perf_counter(), 0
        logged = started
        lock = threading.Lock()

        def report(now: float) -> None:
            nonlocal logged
            seconds = max(now - started, 1e-9)
            logged = now
            log(_plain_line(description, kind, done, total, rate(done, seconds), seconds))

        def advance(n: int) -> None:
            nonlocal done
            with lock:
                done += n
                now = time.perf_counter()
                bar.update(task, advance=n, rate=rate(done, max(now - started, 1e-9)))
                if plain and now - logged >= LOG_EVERY:
                    report(now)

        def heartbeat() -> None:  # a line a minute even while one item takes minutes
            while not stopped.wait(LOG_EVERY / 4):
                with lock:
                    now = time.perf_counter()
                    if now - logged >= LOG_EVERY:
                        report(now)

        stopped = threading.Event()
        if plain:
            threading.Thread(target=heartbeat, name="progress-log", daemon=True).start()
        try:
            yield advance
        finally:
            stopped.set()
        with lock:  # a log that heard of the work hears that it ended
            if plain and logged != started:
                report(time.perf_counter())


def _plain_line(description: str, kind: str, done: int, total: int | None, rate_text: str,
                seconds: float) -> str:
    count = f"{done:,}/{total:,}" if total else f"{done:,}"
    line = f"{description}: {count} {kind}, {rate_text}, elapsed {_duration(seconds)}"
    if total and 0 < done < total:
        line += f", ETA {_duration(seconds * (total - done) / done)}"
    return line


def log(message: str) -> None:
    """A plain status line on stderr."""
    stderr_console.print(message, highlight=False, markup=False)
