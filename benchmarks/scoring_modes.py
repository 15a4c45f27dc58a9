"""The scoring modes that score_speed.py and essentiality_speed.py compare in one run.

    mode_settings("downstream:1024", previous_batch=16) -> {"downstream": 1024}

naive: two full windows per allele; previous: the exact protocol with the batch size the
command used before issue 12 (``previous_batch``); exact: the engine's defaults; bf16;
downstream:N; batch:N. The settings are keyword arguments of ``ScoreOptions`` and of
``score_knockouts`` alike.
"""

from __future__ import annotations


def mode_settings(mode: str, previous_batch: int) -> dict:
    name, _, value = mode.partition(":")
    number = int(value) if value else None
    settings = {
        "naive": {"prefix_reuse": False, "batch_size": previous_batch},
        "previous": {"batch_size": previous_batch},
        "exact": {},
        "bf16": {"precision": "bf16"},
        "downstream": {"downstream": number},
        "batch": {"batch_size": number},
    }
    if name not in settings:
        raise SystemExit(f"unknown mode {mode!r}: one of {', '.join(settings)} (or stream:N)")
    return settings[name]
