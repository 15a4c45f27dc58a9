"""The output policy, enforced here and nowhere else.

- A file output (``-o out.tsv``) is written under a temporary name beside the target
  and renamed over it when complete: a command replaces the file it was asked to
  write, and a failed or interrupted run leaves the old file (or nothing) behind.
- A directory output (``-o report/``) that exists and is not empty is refused unless
  the command was given ``--overwrite``; it is built under a temporary name too.
- Nothing is deleted that the command did not create: on failure the temporary
  names go, and so do the parent directories this command made for ``-o`` (only
  if they are still empty).
- Temporary names are removed on errors, Ctrl-C and SIGTERM (``interrupts.stops_raise``
  turns the signal into an exception so every ``with`` block unwinds). A stop waits while a
  temporary name is being created and registered, and while outputs are being renamed
  into place (``stops_deferred``): arriving in between, it would leave a name nobody
  knows of, or half of an output group.
- ``-o`` naming a symbolic link writes through to the link's target; the link stays.
- ``-`` is standard output for text outputs (``atomic_open``).
- Errors name the user's path, never the temporary one (``display_path``); an OS
  error while writing becomes one ``DnahnetError`` line.

Several outputs of one command can be committed together (``output_group``): none
of them appears unless all were written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dnahnet_core.errors import DnahnetError
from dnahnet_core.interrupts import stops_deferred

STDOUT = "-"
# errors of a write with no file name attached (write(2) does not know the path)
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}

# live temporary names -> the user's path (cleanup); every name ever issued (messages)
_temporaries: dict[str, str] = {}
_display: dict[str, str] = {}
_inputs: set[str] = set()  # real paths of this command's input files (never overwritten)
_group: list[list] = []  # stack of open output groups (pending commits)


def display_path(path: str | os.PathLike) -> str:
    """The user's name for ``path`` (a temporary name maps back to its target)."""
    return _display.get(str(path), str(path))


def user_message(message: str) -> str:
    """``message`` with every temporary name replaced by the user's path."""
    for internal, user in sorted(_display.items(), key=lambda item: -len(item[0])):
        message = message.replace(internal, user)
    return message


def register_temporary(internal: str | os.PathLike, user: str) -> None:
    """Name ``internal`` as ``user`` in messages and remove it in ``remove_temporaries``."""
    _temporaries[str(internal)] = _display[str(internal)] = user


def forget_temporary(internal: str | os.PathLike) -> None:
    _temporaries.pop(str(internal), None)


def register_input(path: str | os.PathLike) -> None:
    """``path`` is an input of the running command: an output may not replace it."""
    _inputs.add(os.path.realpath(path))


def end_command() -> None:
    """Forget the command's inputs and remove its temporaries (however it ended)."""
    _inputs.clear()
    remove_temporaries()


def remove_temporaries() -> None:
    """Remove every temporary file or directory still registered (last-resort cleanup)."""
    for internal in list(_temporaries):
        path = Path(internal)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            with contextlib.suppress(OSError):
                path.unlink()
        _temporaries.pop(internal, None)


def make_temporary_directory(user: str, prefix: str, directory: Path | None = None) -> Path:
    """A new private directory (in ``directory``, or the system's temporary one),
    registered for cleanup under the user's name ``user`` before any stop can arrive."""
    with stops_deferred():
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=directory))
        register_temporary(path, user)
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def resolve_output(path: str | os.PathLike) -> Path:
    """The path an output really goes to: symbolic links are followed (written through)."""
    target = Path(path)
    if str(path) == "":
        raise DnahnetError("output path is empty")
    if target.is_symlink():
        return Path(os.path.realpath(target))
    return target


def _missing_parents(directory: Path, user: str) -> list[Path]:
    """The directories to create for an output in ``directory``, innermost first.

    Fails (naming the user's path) when an existing ancestor is not a writable directory.
    """
    missing = []
    current = directory
    while not current.exists():
        real = Path(os.path.realpath(current))
        if current.is_symlink() and real != current:  # a dangling link: follow it
            current = real
            continue
        if current.is_symlink():
            raise DnahnetError(f"{user}: cannot write there, {current} is a link to nowhere")
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    if not current.is_dir():
        raise DnahnetError(f"{user}: cannot write there, {current} is not a directory")
    if not os.access(current, os.W_OK | os.X_OK):
        raise DnahnetError(f"{user}: cannot write there, {current} is not writable")
    return missing


def check_output_parent(path: str | os.PathLike) -> None:
    """Fail now when the directory that would hold ``path`` cannot be made or written."""
    _missing_parents(resolve_output(path).parent, str(path))


def check_output_file(path: str | os.PathLike) -> None:
    """Fail now, not after the long part, when ``path`` cannot become an output file."""
    if str(path) == STDOUT:
        return
    if str(path) in ("", "."):  # the shell's '' reaches us as '.'
        raise DnahnetError("an output file name is empty (or '.'); give a file name")
    target = resolve_output(path)
    if target.is_dir():
        raise DnahnetError(f"{path}: is a directory (expected a file name)")
    if os.path.realpath(target) in _inputs:
        raise DnahnetError(f"{path}: is also an input of this command; write the output elsewhere")
    if target.exists() and not os.access(target, os.W_OK):
        raise DnahnetError(f"{path}: cannot write (the file is read-only)")
    check_output_parent(path)


def check_outputs(outputs: dict[str, str | os.PathLike | None]) -> None:
    """Fail now, not after the long part, when a file output of one command (option ->
    path; unset ones skipped) cannot be written, or two name the same file: one would
    silently replace the other. ``-`` and devices are not files."""
    seen: dict[str, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        check_output_file(path)
        if str(path) == STDOUT or is_special(resolve_output(path)):
            continue
        real = os.path.realpath(resolve_output(path))
        if real in seen:
            raise DnahnetError(
                f"{path}: named by both {seen[real]} and {option}; give each output its own file"
            )
        seen[real] = option


def is_special(target: Path) -> bool:
    """A character device or FIFO: renaming over it would replace the device itself."""
    try:
        mode = target.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _make_parents(directory: Path, user: str) -> list[Path]:
    """Create ``directory`` and missing ancestors; returns those created, outermost first."""
    missing = _missing_parents(directory, user)
    created: list[Path] = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as error:
            _remove_created(created)
            raise DnahnetError(
                f"{user}: cannot create directory {path} ({error.strerror})"
            ) from None
        created.append(path)
    return created


def _remove_created(created: list[Path]) -> None:
    """Remove directories this command created for an output, innermost first, if empty."""
    for path in reversed(created):
        try:
            path.rmdir()
        except OSError:
            return


def _write_error(error: BaseException, tmp: Path) -> bool:
    """Whether an OS error raised inside an output block is the output's."""
    if not isinstance(error, OSError) or isinstance(error, DnahnetError):
        return False
    if error.filename is not None:
        return str(error.filename) == str(tmp) or str(error.filename2) == str(tmp)
    return error.errno in _WRITE_ERRNOS


def _cannot_write(user: str, error: OSError) -> DnahnetError:
    reason = error.strerror or str(error)
    return DnahnetError(f"{user}: cannot write ({reason})")


def _temporary_beside(target: Path, user: str, suffix: str, directory: bool = False) -> Path:
    """A new temporary name beside ``target``, registered for cleanup (call with stops
    deferred: until it is registered, only the caller knows it)."""
    try:
        if directory:
            name = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        else:
            fd, name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent
            )
            os.close(fd)
    except OSError as error:
        raise _cannot_write(user, error) from None
    register_temporary(name, user)
    # mkstemp/mkdtemp make the name private (0600/0700); outputs get the usual permissions
    os.chmod(name, (0o777 if directory else 0o666) & ~_umask())
    return Path(name)


def _file_mode(target: Path) -> int:
    """An existing output keeps its permissions; a new one gets the umask's."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _commit_file(tmp: Path, target: Path, user: str) -> None:
    try:
        if tmp.exists():  # a library may have replaced the file: set permissions again
            os.chmod(tmp, _file_mode(target))
        os.replace(tmp, target)
    except OSError as error:
        raise _cannot_write(user, error) from None
    forget_temporary(tmp)


@contextlib.contextmanager
def output_group() -> Iterator[None]:
    """Outputs written inside the block appear together when it ends, or none of them.

    Each ``atomic_path``/``atomic_open`` in the block keeps its temporary name until
    the group commits; an error anywhere removes them all.
    """
    if _group:  # nested: the outer group commits
        yield
        return
    pending: list = []
    _group.append(pending)
    try:
        yield
    except BaseException:
        _group.pop()
        for tmp, _target, _user, created in reversed(pending):
            tmp.unlink(missing_ok=True)
            forget_temporary(tmp)
            _remove_created(created)
        raise
    _group.pop()
    with stops_deferred():  # all of them or none
        for tmp, target, user, _created in pending:
            _commit_file(tmp, target, user)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write to; it is renamed to ``path`` on success.

    The temporary name keeps the target's suffix so libraries that pick a format
    from the file name (pysam, matplotlib) still see it. ``path`` may not be a
    directory; missing parent directories are created (and removed again if the
    block fails).
    """
    user = str(path)
    if user == STDOUT:
        raise DnahnetError("-: this output must be a file (standard output cannot hold it)")
    check_output_file(path)
    target = resolve_output(path)
    if is_special(target):  # /dev/null, /dev/stdout, a named pipe: written in place
        try:
            yield target
        except OSError as error:
            if _write_error(error, target):
                raise _cannot_write(user, error) from None
            raise
        return
    created: list[Path] = []
    tmp = None
    try:
        with stops_deferred():
            created = _make_parents(target.parent, user)
            tmp = _temporary_beside(target, user, suffix="".join(target.suffixes))
        yield tmp
        if _group:
            _group[-1].append((tmp, target, user, created))
            return
        with stops_deferred():
            _commit_file(tmp, target, user)
    except BaseException as error:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
            forget_temporary(tmp)
        _remove_created(created)
        if tmp is not None and _write_error(error, tmp):
            raise _cannot_write(user, error) from None
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Open a temporary file for writing; it replaces ``path`` when the block succeeds.

    ``-`` is standard output (text mode only; it is flushed, never closed).
    """
    if str(path) == STDOUT:
        if "b" in mode:
            raise DnahnetError("-: this output is binary; give a file name")
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as handle:
            yield handle


OVERWRITE_ADVICE = "use --overwrite to replace it"


def check_output_directory(
    path: str | os.PathLike,
    overwrite: bool = False,
    inputs: tuple = (),
    advice: str = OVERWRITE_ADVICE,
) -> Path:
    """Refuse an output directory that exists and is not empty (unless ``overwrite``).

    Even with ``overwrite`` a directory holding the current directory or one of the
    command's ``inputs`` is refused. Returns the directory written to (links followed).
    """
    user = str(path)
    if user == STDOUT:
        raise DnahnetError("-: this output is a directory; give its name")
    target = resolve_output(path)
    if target.exists() and not target.is_dir():
        raise DnahnetError(f"{user}: exists and is not a directory")
    check_output_parent(path)
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            raise DnahnetError(f"{user}: already exists and is not empty ({advice})")
        real = target.resolve()
        for kept, what in [(Path.cwd(), "the current directory")] + [
            (Path(p), f"the input {p}") for p in inputs
        ]:
            kept = kept.resolve()
            if kept == real or real in kept.parents:
                raise DnahnetError(f"{user}: --overwrite would delete {what}; choose another")
    return target


def _move_aside(target: Path) -> Path:
    """Rename the directory ``target`` to a new hidden name beside it (call with stops
    deferred); the caller renames it back, or removes it once replaced."""
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    try:
        os.replace(target, aside)
    except OSError:
        aside.rmdir()
        raise
    return aside


@contextlib.contextmanager
def atomic_directory(
    path: str | os.PathLike, overwrite: bool = False, inputs: tuple = ()
) -> Iterator[Path]:
    """Build a directory under a temporary name; it replaces ``path`` on success.

    An existing non-empty ``path`` is refused unless ``overwrite`` (then it is replaced
    only once the new one is complete; see ``check_output_directory`` for ``inputs``).
    """
    user = str(path)
    target = check_output_directory(path, overwrite, inputs)
    if target.resolve() == Path.cwd().resolve():  # renaming '.' is impossible
        raise DnahnetError(f"{user}: is the current directory; give the new directory's name")
    created: list[Path] = []
    tmp = old = None
    try:
        with stops_deferred():
            created = _make_parents(target.parent, user)
            tmp = _temporary_beside(target, user, suffix="", directory=True)
        yield tmp
        with stops_deferred():  # the user's directory is never left moved aside
            try:
                if target.exists():
                    old = _move_aside(target)
                    try:
                        os.replace(tmp, target)
                    except OSError:
                        os.replace(old, target)
                        old = None
                        raise
                    register_temporary(old, user)  # replaced: removed even if stopped now
                else:
                    os.replace(tmp, target)
            except OSError as error:
                raise _cannot_write(user, error) from None
            forget_temporary(tmp)
    except BaseException as error:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            forget_temporary(tmp)
        _remove_created(created)
        if tmp is not None and (_write_error(error, tmp) or (
            isinstance(error, OSError) and str(error.filename or "").startswith(f"{tmp}/")
        )):
            raise _cannot_write(user, error) from None
        raise
    finally:
        if old is not None:  # the directory that was replaced
            shutil.rmtree(old, ignore_errors=True)
            forget_temporary(old)


@contextlib.contextmanager
def output_directory(
    path: str | os.PathLike, overwrite: bool = False, advice: str = OVERWRITE_ADVICE
) -> Iterator[Path]:
    """A directory a command fills in place (a training run, the demo).

    Refused when it exists and is not empty, unless ``overwrite``: then the old one is
    moved aside, and put back if the block fails (removed once it succeeds). Missing
    directories are created; if the block fails, those it created are removed when
    empty (files it wrote there are kept: they were written atomically).
    """
    user = str(path)
    target = check_output_directory(path, overwrite, advice=advice)
    old = None
    created: list[Path] = []
    try:
        with stops_deferred():  # the user's directory is never left moved aside
            if target.is_dir() and any(target.iterdir()):
                old = _move_aside(target)
            created = _make_parents(target, user)
        yield target
    except BaseException:
        if old is not None:  # what this run wrote goes, the user's directory comes back
            shutil.rmtree(target, ignore_errors=True)
            os.replace(old, target)
        else:
            _remove_created(created)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
