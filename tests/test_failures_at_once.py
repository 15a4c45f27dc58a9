"""tests/failures_at_once.py: a failure's traceback is in the log before pytest is stopped."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_stopped_pytest_log_still_holds_the_failure_and_its_reason(tmp_path):
    (tmp_path / "test_sample.py").write_text(
        "import time\n\n"
        "def test_fine():\n    pass\n\n"
        "def test_broken():\n    assert 1 + 1 == 3, 'arithmetic is off'\n\n"
        "def test_long():\n    time.sleep(120)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-v",
               "-p", "tests.failures_at_once", str(tmp_path / "test_sample.py")]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=env, cwd=tmp_path) as pytest_run:
        lines = []
        for line in pytest_run.stdout:  # stop it once the long test starts, as a budget would
            lines.append(line)
            if "test_long" in line:
                pytest_run.kill()
                break
    log = "".join(lines)
    assert "test_fine PASSED" in log
    assert "FAILED test_sample.py::test_broken (call), at once:" in log
    assert "AssertionError: arithmetic is off" in log
    assert "short test summary" not in log  # pytest's own summary never came
