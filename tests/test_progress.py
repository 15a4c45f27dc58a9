"""Progress in a log (stderr not a terminal): a plain line every LOG_EVERY seconds."""

from __future__ import annotations

import time

from dnahnet_core import progress


def test_a_log_gets_a_line_a_minute_even_while_one_item_takes_longer(monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(progress, "LOG_EVERY", 0.2)
    monkeypatch.setattr(progress, "interactive", lambda: False)
    monkeypatch.setattr(progress, "log", lines.append)
    with progress.counter("variants", "scoring variants", 5) as advance:
        advance(1)
        time.sleep(1.0)  # one slow item: no advance, the log still hears from us
    assert 3 <= len(lines) <= 8, lines
    assert all(line.startswith("scoring variants: 1/5 variants") for line in lines), lines
    assert "ETA" in lines[-2]
    assert lines[-1].startswith("scoring variants: 1/5 variants")  # the last word on exit
    count = len(lines)
    time.sleep(0.4)
    assert len(lines) == count  # nothing after the counted part ended


def test_a_short_run_stays_silent(monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(progress, "interactive", lambda: False)
    monkeypatch.setattr(progress, "log", lines.append)
    with progress.counter("genes", "scoring genes", 3) as advance:
        advance(3)
    assert lines == []
