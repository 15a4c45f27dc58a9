"""Standard input and other streams as input files: ``-``, /dev/stdin, pipes, ``<(...)``.

Readers open an input more than once (compression is sniffed from the first bytes; a
VCF is counted, then scored), which a pipe cannot serve: its first read would be lost
and the second open would find it empty. Such an input is therefore copied once to a
private temporary file, which every reader then opens like any file. Messages name the
user's input (``<stdin>`` for ``-``), never the copy, and the copy is removed when the
command ends (``atomic.end_command``), however it ends. Inputs that are files are
remembered so that no output of the same command replaces them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import sys
from pathlib import Path

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import (
    end_command,
    make_temporary_directory,
    register_input,
    register_temporary,
)

STDIN = "-"
STDIN_NAME = "<stdin>"

_copied: dict[str, Path] = {}  # the user's name of each stream copied -> its copy


def input_path(path: str | os.PathLike) -> Path:
    """A path every reader can open (and reopen) for the input ``path``.

    Regular files, directories and missing paths are returned unchanged (readers
    report what is wrong with them); ``-`` and other streams are copied first.
    """
    text = str(path)
    if text == STDIN:
        user = STDIN_NAME
        if sys.stdin is None or sys.stdin.isatty():
            raise DnahnetError(
                "-: standard input is a terminal; pipe the data in "
                "(e.g. zcat genome.fa.gz | dnahnet ... -)"
            )
        opener = lambda: sys.stdin.buffer  # noqa: E731 (not closed: it is the process's)
    else:
        try:
            mode = os.stat(text).st_mode
        except OSError:
            return Path(path)
        if stat.S_ISREG(mode):
            register_input(text)
            return Path(path)
        if stat.S_ISDIR(mode):
            return Path(path)
        user = text
        opener = lambda: open(text, "rb")  # noqa: E731
    if user in _copied and _copied[user].exists():  # the copy lives as long as the command
        raise DnahnetError(f"{user}: a stream can be read only once; give it once")
    _copied[user] = _copy_stream(opener, user)
    return _copied[user]


def _copy_stream(opener, user: str) -> Path:
    directory = make_temporary_directory(user, prefix="dnahnet-input-")
    copy = directory / "input"
    register_temporary(copy, user)
    source = opener()
    try:
        with open(copy, "wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
    except OSError as error:
        raise DnahnetError(f"{user}: cannot read ({error.strerror or error})") from None
    finally:
        if source is not getattr(sys.stdin, "buffer", None):
            source.close()
    return copy


atexit.register(end_command)  # library use outside the CLI cleans up too
