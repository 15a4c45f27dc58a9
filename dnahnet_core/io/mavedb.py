"""MaveDB score sets (CSV) as read by ``dnahnet score-dms``, and manifests of several.

Lines starting with '#' are comments (MaveDB accessions hold '#' inside a field, so
only whole lines are dropped); the table needs the score column and ``hgvs_nt`` or
``hgvs_pro``. Every cell is read as text. ``read_assay_manifest`` reads a TSV that lists
several score sets with their context and CDS.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.compression import TEXT_ENCODING
from dnahnet_core.io.manifests import read_manifest


def read_score_table(path: str | os.PathLike, score_column: str) -> pd.DataFrame:
    path = Path(path)
    try:  # MaveDB accessions hold '#' (urn:mavedb:...-a-1#5): only whole '#' lines are comments
        with open(path, encoding=TEXT_ENCODING, errors="replace") as handle:
            text = "".join(line for line in handle if not line.startswith("#"))
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DnahnetError(f"{path}: not a readable CSV score set ({error})") from None
    if score_column not in table.columns:
        raise DnahnetError(
            f"{path}: no {score_column!r} column (columns: {', '.join(table.columns)})"
        )
    if "hgvs_nt" not in table.columns and "hgvs_pro" not in table.columns:
        raise DnahnetError(
            f"{path}: needs an 'hgvs_nt' or 'hgvs_pro' column (columns: {', '.join(table.columns)})"
        )
    return table


def row_line_numbers(path: str | os.PathLike) -> list[int]:
    """File line number of each data row (after '#' comments and the header line)."""
    numbers, header_seen = [], False
    with open(path, encoding=TEXT_ENCODING, errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith("#") or not line.strip():
                continue
            if header_seen:
                numbers.append(number)
            header_seen = True
    return numbers


ASSAY_COLUMNS = ("scores", "sequence", "cds", "name", "score_column", "genetic_code", "damaging")


def read_assay_manifest(path: str | os.PathLike) -> list[dict]:
    """Score sets to score together, one per line of a TSV with a header naming
    ``scores`` (the CSV), ``sequence`` (context FASTA), ``cds`` (START-END[:STRAND]) and
    optionally ``name``, ``score_column``, ``genetic_code``, ``damaging`` (low/high);
    empty cells None, paths relative to the manifest (``io.manifests``)."""
    rows = read_manifest(path, columns=ASSAY_COLUMNS, required=("scores", "sequence", "cds"),
                         paths=("scores", "sequence"))
    for number, row in enumerate(rows, start=1):
        code = row["genetic_code"]
        if code is not None:
            if not code.isdigit():
                raise DnahnetError(f"{path}: assay {number}: genetic_code {code!r} is not a "
                                   "number")
            row["genetic_code"] = int(code)
    return rows
