"""GTDB metadata: quality filters and species representatives for ``prepare``.

Reads GTDB's own tables (``bac120_metadata_rXX.tsv``, ``ar53_metadata_rXX.tsv``,
optionally compressed) with their real column names: ``accession`` (``RS_GCF_…`` /
``GB_GCA_…``), ``checkm_completeness``, ``checkm_contamination`` (or the
``checkm2_`` columns of newer releases), ``gtdb_representative`` (``t``/``f``) and
``gtdb_taxonomy``. Genome files are matched by the GCF_/GCA_ accession in their name.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from dnahnet_core.data.sources import ACCESSION
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.compression import open_text

REQUIRED = ("accession", "gtdb_representative", "gtdb_taxonomy")


@dataclass(frozen=True)
class GenomeQuality:
    accession: str  # as GTDB writes it, e.g. RS_GCF_000005845.2
    completeness: float
    contamination: float
    representative: bool
    taxonomy: str


def _number(value: str, path: Path, line: int, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        if value.strip().lower() in ("", "none", "na", "n/a"):
            return float("nan")
        raise DnahnetError(f"{path}: line {line}: {column} is not a number: {value!r}") from None


def read_metadata(paths: list[str | os.PathLike]) -> dict[str, GenomeQuality]:
    """GTDB rows keyed by the bare assembly accession (``GCF_000005845.2``)."""
    table: dict[str, GenomeQuality] = {}
    for item in paths:
        path = Path(item)
        if path.is_dir():
            raise DnahnetError(f"{path}: is a directory, not a GTDB metadata table")
        if not path.is_file():
            raise DnahnetError(f"{path}: metadata file not found")
        with open_text(path) as handle:
            reader = csv.reader(handle, delimiter="\t")
            header = next(reader, None)
            if not header:
                raise DnahnetError(f"{path}: empty metadata file")
            columns = {name: i for i, name in enumerate(header)}
            completeness = _column(columns, path, "checkm_completeness", "checkm2_completeness")
            contamination = _column(columns, path, "checkm_contamination", "checkm2_contamination")
            missing = [name for name in REQUIRED if name not in columns]
            if missing:
                raise DnahnetError(
                    f"{path}: not a GTDB metadata table (missing column {', '.join(missing)})"
                )
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise DnahnetError(
                        f"{path}: line {line}: {len(row)} columns, header has {len(header)}"
                    )
                gtdb_accession = row[columns["accession"]]
                bare = ACCESSION.search(gtdb_accession)
                if bare is None:
                    raise DnahnetError(
                        f"{path}: line {line}: accession {gtdb_accession!r} is not GCF_/GCA_"
                    )
                table[bare.group(0)] = GenomeQuality(
                    accession=gtdb_accession,
                    completeness=_number(row[completeness], path, line, header[completeness]),
                    contamination=_number(row[contamination], path, line, header[contamination]),
                    representative=row[columns["gtdb_representative"]].strip().lower()
                    in ("t", "true", "1"),
                    taxonomy=row[columns["gtdb_taxonomy"]],
                )
    return table


def _column(columns: dict[str, int], path: Path, *names: str) -> int:
    for name in names:
        if name in columns:
            return columns[name]
    raise DnahnetError(f"{path}: not a GTDB metadata table (no column {' or '.join(names)})")


class MetadataFilter:
    """Decides, from a file name or genome id, whether a genome is used; counts the reasons."""

    def __init__(
        self,
        paths: list[str | os.PathLike],
        min_completeness: float,
        max_contamination: float,
        representatives_only: bool,
    ):
        self.paths = [str(p) for p in paths]
        self.table = read_metadata(paths)
        by_number: dict[str, list[str]] = {}
        for key in self.table:
            by_number.setdefault(ACCESSION.search(key).group(2), []).append(key)
        # GCA_/GCF_ twins and other versions share the 9-digit number; use it when unique
        self.by_number = {num: keys[0] for num, keys in by_number.items() if len(keys) == 1}
        self.min_completeness = min_completeness
        self.max_contamination = max_contamination
        self.representatives_only = representatives_only
        self.counts = {
            "selected": 0,
            "low_completeness": 0,
            "high_contamination": 0,
            "not_representative": 0,
            "unmatched": 0,
        }
        self.unmatched: list[str] = []

    def lookup(self, name: str) -> GenomeQuality | None:
        match = ACCESSION.search(name)
        if match is None:
            return None
        key = self.table.get(match.group(0)) or self.table.get(
            self.by_number.get(match.group(2), "")
        )
        return key

    def select(self, name: str) -> tuple[str | None, str | None]:
        """(GTDB accession, None) when selected, (accession or None, reason) when not."""
        quality = self.lookup(name)
        if quality is None:
            self.counts["unmatched"] += 1
            self.unmatched.append(name)
            return None, "unmatched"
        reason = None
        if not quality.completeness >= self.min_completeness:
            reason = "low_completeness"
        elif not quality.contamination <= self.max_contamination:
            reason = "high_contamination"
        elif self.representatives_only and not quality.representative:
            reason = "not_representative"
        self.counts[reason or "selected"] += 1
        return quality.accession, reason

    def report(self) -> dict:
        return {
            "files": self.paths,
            "genomes_in_metadata": len(self.table),
            "min_completeness": self.min_completeness,
            "max_contamination": self.max_contamination,
            "representatives_only": self.representatives_only,
            "counts": dict(self.counts),
            "unmatched": list(self.unmatched),
        }
