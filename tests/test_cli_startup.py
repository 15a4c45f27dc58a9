"""Starting the command line: --help and --version stay light (no torch), and Ctrl-C at
any moment of a command's start-up ends as it does inside a command: status 130, no
traceback, nothing left behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DEMO_DATA, REPO, TEST_DATA, leftovers

T4 = TEST_DATA / "pool" / "phage_T4_NC_000866.1.fna.gz"
LIKELIHOOD = ["likelihood", "t4.fa.gz", "--config", "dnahnet-tiny", "--context", "512",
              "-o", "out/ll.tsv"]


def _ctrl_c_default() -> None:
    """For a child process: Ctrl-C as at a terminal. Background jobs of a shell and
    pytest-xdist's workers run with SIGINT ignored, which their children inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _console_script() -> list[str]:
    """The ``dnahnet`` script installed beside this Python (what users run), else -m."""
    script = Path(sys.executable).with_name("dnahnet")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dnahnet_cli"]


def _python(code: str, cwd: Path | None = None, ctrl_c=_ctrl_c_default):
    """Run ``code`` in a fresh Python that imports this checkout; ``ctrl_c`` sets its
    SIGINT disposition before it starts."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120,
                          preexec_fn=ctrl_c)


def _probe(args: list[str], cwd: Path, interrupt_import: str | None = None):
    """Run ``dnahnet ARGS`` through the console script's ``main`` in a fresh Python; with
    ``interrupt_import``, importing that module raises KeyboardInterrupt (a Ctrl-C that
    lands while it loads). Prints whether torch got loaded."""
    code = [
        "import sys",
        f"sys.argv = ['dnahnet', *{args!r}]",
        "class CtrlC:",
        "    def find_spec(self, name, path=None, target=None):",
        f"        if name == {interrupt_import!r}:",
        "            raise KeyboardInterrupt",
        "sys.meta_path.insert(0, CtrlC())",
        "from dnahnet_cli import main",
        "try:",
        "    main()",
        "finally:",
        "    print('torch loaded' if 'torch' in sys.modules else 'torch not loaded')",
    ]
    return _python("\n".join(code), cwd)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["essentiality", "--help"]])
def test_help_and_version_do_not_load_torch(args, tmp_path):
    done = _probe(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "torch not loaded"


@pytest.mark.parametrize("module", ["typer", "torch"])
def test_ctrl_c_while_a_module_loads_is_status_130_without_traceback(tmp_path, module):
    """typer loads with the command line, torch once the command starts."""
    shutil.copy(T4, tmp_path / "t4.fa.gz")
    done = _probe(LIKELIHOOD, tmp_path, interrupt_import=module)
    assert done.returncode == 130, done.stderr
    assert done.stderr == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t4.fa.gz"]


# After Python's own start-up (tens of ms; a Ctrl-C inside it is Python's traceback, not
# ours), through torch's import (its C++ start-up around 0.5-0.75 s here) into the command.
@pytest.mark.parametrize("delay", [0.3, 0.5, 0.6, 0.75, 0.9, 1.3, 1.8])
def test_a_real_ctrl_c_during_start_up_is_status_130_and_leaves_nothing(tmp_path, delay):
    shutil.copy(T4, tmp_path / "t4.fa.gz")
    process = subprocess.Popen(
        [*_console_script(), *LIKELIHOOD],
        cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(tmp_path)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=_ctrl_c_default,
    )
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert (process.returncode, stderr.decode()) == (130, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t4.fa.gz"]


HELD_CTRL_C = """
import signal, sys, time, types
from importlib.machinery import ModuleSpec
from dnahnet_core.interrupts import stops_raise
with stops_raise():
    torch = types.ModuleType("torch")
    torch.__spec__ = ModuleSpec("torch", None)
    torch.__spec__._initializing = True  # what importlib sets while a module's code runs
    sys.modules["torch"] = torch
    signal.raise_signal(signal.SIGINT)
    time.sleep(0.5)
    print("held while torch loads", flush=True)
    torch.__spec__._initializing = False
    try:
        time.sleep(5)
        print("never interrupted")
    except KeyboardInterrupt:
        print("interrupted once torch has loaded")
"""


def test_ctrl_c_waits_until_torch_has_loaded():
    """A KeyboardInterrupt inside torch's C++ start-up aborts the process (SIGABRT)."""
    done = _python(HELD_CTRL_C)
    assert done.stdout.splitlines() == [
        "held while torch loads", "interrupted once torch has loaded"
    ], done.stderr


HELD_WHILE_WORKERS_START = """
import signal
from dnahnet_core.interrupts import workers_ignore_ctrl_c
try:
    with workers_ignore_ctrl_c():
        signal.raise_signal(signal.SIGINT)
        print("held while workers start", flush=True)
    print("lost")
except KeyboardInterrupt:
    print("delivered once they have started")
"""


def test_a_ctrl_c_while_workers_start_is_delivered_afterwards():
    done = _python(HELD_WHILE_WORKERS_START)
    assert done.stdout.splitlines() == [
        "held while workers start", "delivered once they have started"
    ], done.stderr


HELD_ON_ANOTHER_THREAD = """
import signal, threading
from dnahnet_core.interrupts import stops_deferred, workers_ignore_ctrl_c
go, done = threading.Event(), threading.Event()
def other():  # a thread started before the block: Ctrl-C not blocked in it
    go.wait()
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)
    done.set()
thread = threading.Thread(target=other, daemon=True)
thread.start()
for block in (workers_ignore_ctrl_c, stops_deferred):
    try:
        with block():
            go.set()
            done.wait()
            for _ in range(1000):  # bytecodes, where Python runs a handler
                pass
            print("held", flush=True)
        print("lost")
    except KeyboardInterrupt:
        print("delivered after the block")
    go.clear(); done.clear()
    thread = threading.Thread(target=other, daemon=True)
    thread.start()
"""


def test_a_ctrl_c_that_another_thread_receives_is_held_too():
    """The kernel may hand a terminal's Ctrl-C to any thread that does not block it, and
    Python runs the handler in the main thread anyway: in the block it must wait (a
    KeyboardInterrupt while the pool wrote a worker's start-up data left that worker to
    print "EOFError: Ran out of input", a CI failure of the test below)."""
    done = _python(HELD_ON_ANOTHER_THREAD)
    assert done.stdout.splitlines() == ["held", "delivered after the block"] * 2, done.stderr


def test_an_ignored_ctrl_c_stays_ignored():
    """A shell script's background job starts with SIGINT ignored."""
    code = ("import signal\nfrom dnahnet_core.interrupts import stops_raise\n"
            "with stops_raise():\n    signal.raise_signal(signal.SIGINT)\nprint('ok')")
    done = _python(code, ctrl_c=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("delay", [1.0, 2.0, 3.0, 4.0, 5.0])
def test_a_terminals_ctrl_c_with_workers_is_status_130_and_one_quiet_exit(tmp_path, delay):
    """Ctrl-C at a terminal goes to the whole process group: the spawned workers as they
    start (Python's start-up, torch's, the model) and as they score, and the command."""
    work, scratch = tmp_path / "work", tmp_path / "tmpdir"
    work.mkdir()
    scratch.mkdir()
    process = subprocess.Popen(
        [*_console_script(), "essentiality", str(DEMO_DATA / "phage_vt2_sakai.fna.gz"),
         str(DEMO_DATA / "phage_vt2_sakai.gff.gz"), "--workers", "2", "-o", "out/ess.tsv"],
        cwd=work, env=dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(scratch)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=_ctrl_c_default,
    )
    time.sleep(delay)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert (process.returncode, stderr.decode()) == (130, "")
    assert list(work.iterdir()) == []
    assert leftovers(scratch) == []
