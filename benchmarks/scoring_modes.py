"""The scoring modes that score_speed.py and essentiality_speed.py compare in one run.

    mode_settings("downstream:1024", previous_batch=16) -> {"downstream": 1024}

naive: two full windows per allele; previous: the exact protocol with the batch size the
command used before issue 12 (``previous_batch``); exact: the engine's defaults; bf16;
downstream:N; batch:N; stream:N (score-variants --genome-stream --downstream N). Modes
joined with "+" combine (``stream:256+bf16``). The settings are keyword arguments of
``ScoreOptions`` and (but stream) of ``score_knockouts`` alike.
"""

from __future__ import annotations


def mode_settings(mode: str, previous_batch: int) -> dict:
    if "+" in mode:
        combined: dict = {}
        for part in mode.split("+"):
            combined.update(mode_settings(part, previous_batch))
        return combined
    name, _, value = mode.partition(":")
    number = int(value) if value else None
    settings = {
        "naive": {"prefix_reuse": False, "batch_size": previous_batch},
        "previous": {"batch_size": previous_batch},
        "exact": {},
        "bf16": {"precision": "bf16"},
        "downstream": {"downstream": number},
        "batch": {"batch_size": number},
        "stream": {"genome_stream": True, "downstream": number},
    }
    if name not in settings:
        raise SystemExit(f"unknown mode {mode!r}: one of {', '.join(settings)})")
    return settings[name]
