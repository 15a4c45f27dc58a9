"""The output policy of dnahnet_core.io.atomic, case by case (the CLI matrix is in
test_bad_inputs.py): replace only what was asked, refuse non-empty directories, remove
temporary names and the directories made for them, write through links."""

from __future__ import annotations

import os
import pathlib
import signal
import stat
import tempfile
import threading

import pytest

from dnahnet_core.errors import DnahnetError
from dnahnet_core.interrupts import Terminated, stops_raise
from dnahnet_core.io.atomic import (
    atomic_directory,
    atomic_open,
    atomic_path,
    check_output_file,
    output_directory,
    output_group,
    user_message,
)


def listing(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_file_output_is_replaced_whole_and_keeps_its_permissions(tmp_path):
    target = tmp_path / "out.tsv"
    target.write_text("old\n")
    target.chmod(0o640)
    with atomic_open(target) as handle:
        handle.write("new\n")
        assert target.read_text() == "old\n"  # not visible before the block ends
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert listing(tmp_path) == ["out.tsv"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.tsv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write("partial")
        raise RuntimeError("failed mid-write")
    assert target.read_text() == "old\n"
    assert listing(tmp_path) == ["out.tsv"]


def test_directories_made_for_an_output_go_when_it_fails(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(KeyboardInterrupt), atomic_open(tmp_path / "a" / "b" / "c" / "x.tsv"):
        raise KeyboardInterrupt
    assert listing(tmp_path) == ["a"]  # "a" was there before: kept
    with atomic_open(tmp_path / "a" / "b" / "x.tsv") as handle:
        handle.write("ok\n")
    assert listing(tmp_path) == ["a", "a/b", "a/b/x.tsv"]


def test_a_file_in_the_way_is_one_clear_error_naming_the_users_path(tmp_path):
    (tmp_path / "afile").write_text("x")
    for bad, says in [("afile/out.tsv", "afile is not a directory"),
                      ("afile/deeper/out.tsv", "afile is not a directory")]:
        with pytest.raises(DnahnetError, match=says) as error:
            with atomic_open(tmp_path / bad):
                pass
        assert str(error.value).startswith(str(tmp_path / bad))
    with pytest.raises(DnahnetError, match="is a directory"):
        check_output_file(tmp_path)
    assert listing(tmp_path) == ["afile"]


def test_a_link_is_written_through_and_stays_a_link(tmp_path):
    real = tmp_path / "data" / "real.tsv"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "link.tsv"
    link.symlink_to(real)
    with atomic_open(link) as handle:
        handle.write("new\n")
    assert link.is_symlink() and real.read_text() == "new\n"
    dangling = tmp_path / "dangling.tsv"
    dangling.symlink_to(tmp_path / "data" / "later.tsv")
    with atomic_open(dangling) as handle:
        handle.write("made\n")
    assert dangling.is_symlink() and (tmp_path / "data" / "later.tsv").read_text() == "made\n"


def test_a_device_is_written_in_place_and_a_full_disk_is_one_error(tmp_path):
    with atomic_open("/dev/null") as handle:
        handle.write("discarded\n")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(DnahnetError, match="/dev/full: cannot write"):
        with atomic_open("/dev/full") as handle:
            handle.write("x" * 100_000)
            handle.flush()


def test_dash_is_standard_output_for_text_and_refused_for_files(capsys):
    with atomic_open("-") as handle:
        handle.write("to stdout\n")
    assert capsys.readouterr().out == "to stdout\n"
    with pytest.raises(DnahnetError, match="^-: "):
        with atomic_path("-"):
            pass


def test_an_output_group_appears_whole_or_not_at_all(tmp_path):
    with pytest.raises(RuntimeError), output_group():
        with atomic_open(tmp_path / "ranking.tsv") as handle:
            handle.write("ranking\n")
        with atomic_open(tmp_path / "new" / "metrics.json") as handle:
            handle.write("{}\n")
        assert listing(tmp_path) == [
            name for name in listing(tmp_path) if name.startswith((".", "new"))
        ]  # nothing under its final name yet
        raise RuntimeError("the plot failed")
    assert listing(tmp_path) == []
    with output_group():
        with atomic_open(tmp_path / "ranking.tsv") as handle:
            handle.write("ranking\n")
        with atomic_open(tmp_path / "metrics.json") as handle:
            handle.write("{}\n")
    assert listing(tmp_path) == ["metrics.json", "ranking.tsv"]


def test_a_non_empty_directory_is_refused_without_overwrite(tmp_path, monkeypatch):
    report = tmp_path / "report"
    report.mkdir()
    (report / "notes.txt").write_text("mine\n")
    with pytest.raises(DnahnetError, match="not empty .*--overwrite"):
        with atomic_directory(report):
            pass
    assert listing(tmp_path) == ["report", "report/notes.txt"]
    with atomic_directory(report, overwrite=True) as tmp:
        (tmp / "summary.tsv").write_text("new\n")
    assert listing(tmp_path) == ["report", "report/summary.tsv"]
    monkeypatch.chdir(report)
    with pytest.raises(DnahnetError, match="current directory"):
        with atomic_directory(".", overwrite=True):
            pass
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DnahnetError, match="the input"):
        with atomic_directory(report, overwrite=True, inputs=[report / "summary.tsv"]):
            pass
    assert listing(tmp_path) == ["report", "report/summary.tsv"]


def test_an_empty_directory_may_be_used_and_a_failed_one_leaves_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    with atomic_directory(tmp_path / "empty") as tmp:
        (tmp / "a.tsv").write_text("a\n")
    assert listing(tmp_path) == ["empty", "empty/a.tsv"]
    with pytest.raises(ValueError), atomic_directory(tmp_path / "x" / "y") as tmp:
        (tmp / "partial.tsv").write_text("p\n")
        raise ValueError
    assert listing(tmp_path) == ["empty", "empty/a.tsv"]


def test_an_in_place_directory_is_removed_on_failure_only_if_empty(tmp_path):
    with pytest.raises(ValueError), output_directory(tmp_path / "run" / "a"):
        raise ValueError
    assert listing(tmp_path) == []
    with pytest.raises(ValueError), output_directory(tmp_path / "run") as run:
        (run / "metrics.jsonl").write_text("{}\n")
        raise ValueError
    assert listing(tmp_path) == ["run", "run/metrics.jsonl"]  # what it wrote is kept
    with pytest.raises(DnahnetError, match="not empty"):
        with output_directory(tmp_path / "run"):
            pass


def test_messages_name_the_users_path_not_the_temporary(tmp_path):
    target = tmp_path / "out.vcf"
    with pytest.raises(DnahnetError) as error, atomic_path(target) as tmp:
        raise OSError(5, "Input/output error", str(tmp))
    assert str(error.value) == f"{target}: cannot write (Input/output error)"
    with pytest.raises(ValueError) as error, atomic_path(target) as tmp:
        raise ValueError(f"{tmp}: a library complained")
    assert user_message(str(error.value)) == f"{target}: a library complained"


def test_the_current_directory_is_never_replaced_even_when_empty(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DnahnetError, match="current directory"):
        with atomic_directory("."):
            pass
    assert listing(tmp_path) == []
    with output_directory(".") as here:  # filled in place: an empty one is fine
        (here / "a.tsv").write_text("a\n")
    assert listing(tmp_path) == ["a.tsv"]


# A stop (SIGTERM here; Ctrl-C is blocked the same way) sent at the worst moment: right
# after a call that creates or renames something returns, before the next line runs.
STOP_MOMENTS = {
    "after the temporary file is created": (tempfile, "mkstemp"),
    "after the temporary directory is created": (tempfile, "mkdtemp"),
    "after a missing parent is created": (pathlib.Path, "mkdir"),
    "after an output is renamed into place": (os, "replace"),
}


@pytest.fixture
def stop_after(monkeypatch):
    """``stop_after(moment)``: the first call of that function sends this process SIGTERM
    (raised as ``Terminated`` in ``stops_raise``) as soon as it returns."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")

    def arm(moment: str) -> None:
        owner, name = STOP_MOMENTS[moment]
        original = getattr(owner, name)
        calls = []

        def then_stop(*args, **kwargs):
            result = original(*args, **kwargs)
            if not calls:
                calls.append(name)
                signal.raise_signal(signal.SIGTERM)
            return result

        monkeypatch.setattr(owner, name, then_stop)

    return arm


@pytest.mark.parametrize("moment", [
    "after the temporary file is created", "after a missing parent is created",
])
def test_a_stop_while_a_file_output_is_set_up_leaves_nothing(tmp_path, stop_after, moment):
    """The CI failure of 2026-11-22: Ctrl-C between mkstemp and the name's registration
    left the temporary file and the directories made for it."""
    stop_after(moment)
    with pytest.raises(Terminated), stops_raise():
        with atomic_open(tmp_path / "new" / "dir" / "ll.tsv") as handle:
            handle.write("never reached\n")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("moment", [
    "after the temporary directory is created", "after a missing parent is created",
])
def test_a_stop_while_a_directory_output_is_set_up_leaves_nothing(tmp_path, stop_after, moment):
    stop_after(moment)
    with pytest.raises(Terminated), stops_raise():
        with atomic_directory(tmp_path / "new" / "report") as report:
            (report / "never.tsv").write_text("x\n")
    assert listing(tmp_path) == []


def test_a_stop_during_an_output_groups_commit_waits_for_all_of_it(tmp_path, stop_after):
    with pytest.raises(Terminated), stops_raise(), output_group():
        for name in ("ranking.tsv", "metrics.json"):
            with atomic_open(tmp_path / name) as handle:
                handle.write(f"{name}\n")
        stop_after("after an output is renamed into place")
    assert listing(tmp_path) == ["metrics.json", "ranking.tsv"]  # both: never one alone


def test_a_stop_while_replacing_a_directory_keeps_the_users_or_the_new_one(tmp_path, stop_after):
    report = tmp_path / "report"
    report.mkdir()
    (report / "mine.txt").write_text("mine\n")
    with pytest.raises(Terminated), stops_raise():
        with atomic_directory(report, overwrite=True) as new:
            (new / "summary.tsv").write_text("new\n")
            stop_after("after an output is renamed into place")
    assert listing(tmp_path) == ["report", "report/summary.tsv"]  # replaced whole
    stop_after("after an output is renamed into place")  # the user's moved aside...
    with pytest.raises(Terminated), stops_raise():
        with output_directory(report, overwrite=True) as run:
            (run / "step.txt").write_text("partial\n")
    assert listing(tmp_path) == ["report", "report/summary.tsv"]  # ...and put back
