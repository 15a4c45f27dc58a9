"""Essentiality inputs: labels (a TSV of gene id -> essential) and a genome manifest.

    labels = read_labels("labels.tsv")       # {id: True (essential) / False}
    genomes = read_genome_manifest("genomes.tsv")   # [{"genome": Path, "annotation": ...}]

The evaluation report is written by ``io.reports.write_json_report``.
"""

from __future__ import annotations

import os
from pathlib import Path

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.compression import open_text
from dnahnet_core.io.manifests import read_manifest

_ESSENTIAL = {"e", "essential", "1", "true", "t", "yes", "y"}
_NONESSENTIAL = {"ne", "non-essential", "nonessential", "non_essential", "0", "false", "f", "no",
                 "n"}
_ID_COLUMNS = ("locus_tag", "gene", "id", "name", "old_locus_tag", "gene_name", "locus")
_LABEL_COLUMNS = ("essential", "essentiality", "label", "class", "status", "is_essential")


def _label_value(text: str) -> bool | None:
    text = text.strip().lower()
    if text in _ESSENTIAL:
        return True
    if text in _NONESSENTIAL:
        return False
    return None


def read_labels(path: str | os.PathLike) -> dict[str, bool]:
    """A TSV of id -> essential (E/NE, 1/0, true/false, yes/no), with or without a header.

    Without a header the first column is the id, the second the label. With one, the id
    column is the first named like locus_tag/gene/id and the label column the first
    named like essential/label/class (else the first and second columns).
    """
    path = Path(path)
    labels: dict[str, bool] = {}
    id_col, label_col = 0, 1
    first = True
    with open_text(path) as handle:  # undecodable bytes fail below, naming the line
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = [f.strip() for f in (line.split("\t") if "\t" in line else line.split())]
            if first:
                first = False
                if len(fields) < 2:
                    raise DnahnetError(f"{path}: line {number}: expected two columns: id, label")
                if _label_value(fields[1]) is None or fields[0].lower() in _ID_COLUMNS:  # header
                    names = [f.lower() for f in fields]
                    id_col = next((names.index(c) for c in _ID_COLUMNS if c in names), 0)
                    label_col = next(
                        (names.index(c) for c in _LABEL_COLUMNS if c in names),
                        1 if id_col != 1 else 0,
                    )
                    continue
            if len(fields) <= max(id_col, label_col):
                raise DnahnetError(f"{path}: line {number}: too few columns")
            ident, value = fields[id_col], _label_value(fields[label_col])
            if value is None:
                raise DnahnetError(
                    f"{path}: line {number}: label {fields[label_col]!r} is not one of "
                    "E/NE, 1/0, true/false, yes/no"
                )
            if ident in labels and labels[ident] != value:
                raise DnahnetError(
                    f"{path}: line {number}: {ident!r} is labelled twice, differently"
                )
            labels[ident] = value
    if not labels:
        raise DnahnetError(f"{path}: no labels")
    return labels


def read_genome_manifest(path: str | os.PathLike) -> list[dict]:
    """Genomes to rank together, one per line of a TSV with a header naming ``genome`` and
    optionally ``annotation``, ``labels`` (that genome's own labels file) and ``name``
    (``io.manifests``: paths relative to the manifest, empty cells None)."""
    return read_manifest(path, columns=("genome", "annotation", "labels", "name"),
                         required=("genome",), paths=("genome", "annotation", "labels"))
