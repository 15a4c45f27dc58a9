"""JSON reports of the tasks (check-model, essentiality metrics, score-dms metrics).

    write_json_report("rank.metrics.json", report)   # atomic; strict JSON

Strict JSON: NaN becomes null and an infinity the string "inf" / "-inf"; numpy numbers
become Python numbers, tuples lists; keys starting with '_' (curves kept for plots) are
left out.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from dnahnet_core.io.atomic import atomic_open


def json_ready(value):
    """``value`` with every number made strict-JSON and private ('_') keys dropped."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json_report(path: str | os.PathLike, report: dict) -> None:
    """The report as indented strict JSON, written atomically (``-``: standard output)."""
    with atomic_open(path, "w") as handle:
        json.dump(json_ready(report), handle, indent=1)
        handle.write("\n")
