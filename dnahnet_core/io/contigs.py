"""Reconciling contig names between files (VCF or GFF against a FASTA reference).

Resolution order for a query name (e.g. a VCF ``#CHROM``):

1. ``--chrom-map`` entry, when a map is given and names this contig;
2. exact match with a reference record id;
3. accession match: accessions are parsed from both names — the name itself
   (``NC_007795.1``) or the fields of an NCBI pipe header
   (``gi|87162298|ref|NC_007795.1|`` gives ``NC_007795.1``) — and compared with
   the version (``.1``) when both names carry one, or without it when one side
   has none (``NC_007795`` finds ``NC_007795.1``). Two different explicit versions
   are different sequences and do not match.

No match is an error that lists both name sets (and suggests ``--chrom-map``).

    matcher = ContigMatcher(genome.keys(), chrom_map=read_chrom_map(path))
    matcher.resolve("NC_007795")   # -> "gi|87162298|ref|NC_007795.1|" or None
    matcher.require("NC_007795", where="in.vcf: line 12")   # raises DnahnetError
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.compression import open_text

# database tags of NCBI FASTA-header identifiers; the field after each is an accession
_DB_TAGS = {"ref", "gb", "emb", "dbj", "tpg", "tpe", "tpd", "lcl", "gnl", "ena", "sp", "tr"}
_ACCESSION = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\d(\.\d+)?$")
_VERSION = re.compile(r"\.(\d+)$")
_SHOWN = 12  # names listed in an error message, per side


def split_version(accession: str) -> tuple[str, str | None]:
    """``NC_007795.1`` -> (``NC_007795``, ``1``); ``NC_007795`` -> (``NC_007795``, None)."""
    match = _VERSION.search(accession)
    if match is None:
        return accession, None
    return accession[: match.start()], match.group(1)


def accessions_of(name: str) -> list[str]:
    """Accession-like identifiers found in a sequence name (possibly an NCBI pipe header)."""
    name = name.strip()
    if "|" not in name:
        return [name] if _ACCESSION.match(name) else []
    fields = name.split("|")
    found = []
    for i, field in enumerate(fields[:-1]):
        if field.lower() in _DB_TAGS and _ACCESSION.match(fields[i + 1]):
            found.append(fields[i + 1])
    if not found:  # unknown layout: every accession-like field that is not a bare number
        found = [f for f in fields if _ACCESSION.match(f)]
    return found


def read_chrom_map(path: str | os.PathLike) -> dict[str, str]:
    """A two-column TSV: name in the input file <tab> record id in the reference.

    Blank lines and lines starting with '#' are ignored.
    """
    path = Path(path)
    mapping: dict[str, str] = {}
    with open_text(path) as handle:  # undecodable bytes fail below, naming the line
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
                raise DnahnetError(
                    f"{path}: line {number}: expected two tab-separated names "
                    f"(input name, reference name), got {line!r}"
                )
            source, target = fields[0].strip(), fields[1].strip()
            if source in mapping and mapping[source] != target:
                raise DnahnetError(f"{path}: line {number}: {source!r} is mapped twice")
            mapping[source] = target
    return mapping


def _shown(names: Iterable[str]) -> str:
    names = list(names)
    text = ", ".join(names[:_SHOWN])
    if len(names) > _SHOWN:
        text += f", ... ({len(names)} in all)"
    return text or "(none)"


class ContigMatcher:
    """Finds the reference record id for a contig name used by another file."""

    def __init__(
        self,
        reference_names: Iterable[str],
        chrom_map: dict[str, str] | None = None,
        *,
        reference_label: str = "reference FASTA",
        query_label: str = "input",
        map_option: str | None = "--chrom-map",
    ) -> None:
        """``map_option``: the command's option that maps names, named in the errors'
        advice (None: the command has none)."""
        self.reference_names = list(reference_names)
        self.advice = (f"give {map_option} with two tab-separated columns: input name, "
                       "reference name" if map_option else
                       "rename the contigs of one file to match the other")
        self.reference_label = reference_label
        self.query_label = query_label
        self._exact = set(self.reference_names)
        self._versioned: dict[str, set[str]] = {}
        self._base: dict[str, set[str]] = {}
        for ref in self.reference_names:
            for accession in accessions_of(ref):
                self._versioned.setdefault(accession, set()).add(ref)
                base, _ = split_version(accession)
                self._base.setdefault(base, set()).add(ref)
        self.chrom_map = dict(chrom_map or {})
        for source, target in self.chrom_map.items():
            if self._match(target) is None:
                raise DnahnetError(
                    f"--chrom-map: {source!r} is mapped to {target!r}, which is not a record of "
                    f"the {self.reference_label} (records: {_shown(self.reference_names)})"
                )
        self._cache: dict[str, str | None] = {}

    def _match(self, name: str) -> str | None:
        if name in self._exact:
            return name
        candidates: set[str] = set()
        for accession in accessions_of(name):
            base, version = split_version(accession)
            if version is not None:
                hits = set(self._versioned.get(accession, set()))
                # a versioned query also finds a versionless reference name
                hits |= {r for r in self._base.get(base, set()) if base in accessions_of(r)}
            else:
                hits = set(self._base.get(base, set()))
            candidates |= hits
        if len(candidates) > 1:
            raise DnahnetError(
                f"contig {name!r} matches several {self.reference_label} records by accession "
                f"({_shown(sorted(candidates))}); {self.advice}"
            )
        return next(iter(candidates)) if candidates else None

    def resolve(self, name: str) -> str | None:
        """The reference record id for ``name``, or None when nothing matches."""
        if name not in self._cache:
            if name in self.chrom_map:
                self._cache[name] = self._match(self.chrom_map[name])
            else:
                self._cache[name] = self._match(name)
        return self._cache[name]

    def require(self, name: str, *, where: str = "", query_names: Iterable[str] = ()) -> str:
        """Like ``resolve`` but an unknown name is a DnahnetError listing both name sets."""
        found = self.resolve(name)
        if found is None:
            raise self.error(name, where=where, query_names=query_names)
        return found

    def error(self, name: str, *, where: str = "", query_names: Iterable[str] = ()) -> DnahnetError:
        query = list(query_names) or [name]
        prefix = f"{where}: " if where else ""
        return DnahnetError(
            f"{prefix}contig {name!r} not found in the {self.reference_label} by exact name or "
            f"accession; {self.query_label} contigs: {_shown(query)}; "
            f"{self.reference_label} records: {_shown(self.reference_names)} "
            f"({self.advice})"
        )

    def match_all(self, names: Iterable[str], *, where: str = "") -> dict[str, str]:
        """Map every name; any unknown one is an error listing both name sets."""
        names = list(dict.fromkeys(names))
        mapping = {}
        for name in names:
            mapping[name] = self.require(name, where=where, query_names=names)
        return mapping
