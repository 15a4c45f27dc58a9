"""A pytest plugin: print each failure's traceback when it happens (`-p tests.failures_at_once`).

pytest prints tracebacks only in its summary at the end; scripts/gpu_check.sh stops a step
that overruns its time budget, and then the summary never comes. With this plugin and `-v`,
a stopped log still says which tests passed, which failed and why.
"""

from __future__ import annotations

import pytest

_config: pytest.Config | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _config
    _config = config  # the terminal reporter registers later: look it up when needed


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    terminal = _config and _config.pluginmanager.get_plugin("terminalreporter")
    if report.failed and terminal is not None:
        terminal.write_line(f"\nFAILED {report.nodeid} ({report.when}), at once:")
        terminal.write_line(report.longreprtext)
        terminal.flush()  # a log read through a pipe would otherwise wait for the buffer
