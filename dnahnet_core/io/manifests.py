"""Manifests: TSV tables that list several inputs of one run (genomes, DMS assays).

    rows = read_manifest("assays.tsv", columns=("scores", "sequence", "cds", "name"),
                         required=("scores", "sequence", "cds"), paths=("scores", "sequence"))

A header line names the columns (any order, case-insensitive, a subset of ``columns``
that holds every ``required`` one); '#' lines and blank lines are skipped; empty cells
are None. Cells of ``paths`` columns are file paths relative to the manifest's folder
and must exist. Every error names the manifest and the line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.compression import open_text


def read_manifest(
    path: str | os.PathLike,
    *,
    columns: Sequence[str],
    required: Sequence[str],
    paths: Sequence[str] = (),
) -> list[dict]:
    """One dict per data line, with every name of ``columns`` as a key."""
    path = Path(path)
    rows: list[dict] = []
    header: list[str] | None = None
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = [f.strip() for f in line.split("\t")]
            where = f"{path}: line {number}"
            if header is None:
                header = [f.lower() for f in fields]
                unknown = [c for c in header if c not in columns]
                missing = [c for c in required if c not in header]
                if unknown or missing or len(set(header)) != len(header):
                    raise DnahnetError(
                        f"{where}: the header must name the tab-separated columns "
                        f"{', '.join(required)} (optional: "
                        f"{', '.join(c for c in columns if c not in required)}), each once; "
                        f"found {', '.join(fields)}"
                    )
                continue
            if len(fields) > len(header):
                raise DnahnetError(f"{where}: {len(fields)} columns, the header has {len(header)}")
            cells = dict(zip(header, fields + [""] * (len(header) - len(fields)), strict=True))
            row = {column: cells.get(column) or None for column in columns}
            for column in required:
                if row[column] is None:
                    raise DnahnetError(f"{where}: no {column}")
            for column in paths:
                if row[column] is not None:
                    row[column] = path.parent / row[column]
                    if not row[column].is_file():
                        raise DnahnetError(f"{where}: {column} {row[column]}: no such file")
            rows.append(row)
    if not rows:
        raise DnahnetError(f"{path}: lists nothing (a header line, then one line per input)")
    return rows
