"""The reference genome the tasks read: sequences, tokens, and contig-name matching.

    genome = Genome.read("genome.fa.gz", chrom_map={"chr": "NC_000913.3"}, query_label="in.vcf")
    name = genome.contig_of("NC_000913", where="in.vcf: line 12")   # ContigMatcher rules
    genome.sequence(name)      # upper-case string (IUPAC ambiguity codes as N)
    genome.tokens(name)        # uint8 tokens, encoded once on first use

One holder for score-variants, score-dms and essentiality: a task asks for the tokens
of a contig by its FASTA record id, and for the record id of a name another file uses
(``io.contigs``: ``--chrom-map``, exact name, then accession).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from dnahnet_core.alphabet import encode
from dnahnet_core.io.contigs import ContigMatcher
from dnahnet_core.io.fasta import load_genome


class Genome:
    def __init__(
        self,
        sequences: dict[str, str],
        *,
        source: str = "reference FASTA",
        chrom_map: dict[str, str] | None = None,
        query_label: str = "input",
        map_option: str | None = "--chrom-map",
    ) -> None:
        self.sequences = sequences
        self.source = source
        self.matcher = ContigMatcher(
            sequences, chrom_map, reference_label=source, query_label=query_label,
            map_option=map_option,
        )
        self._tokens: dict[str, np.ndarray] = {}

    @classmethod
    def read(
        cls,
        path: str | os.PathLike,
        *,
        chrom_map: dict[str, str] | None = None,
        query_label: str = "input",
        map_option: str | None = "--chrom-map",
    ) -> Genome:
        """All records of a FASTA file (plain, gz, xz, bz2); duplicate ids are an error.
        ``map_option``: as ``ContigMatcher``'s."""
        return cls(load_genome(path), source=str(path), chrom_map=chrom_map,
                   query_label=query_label, map_option=map_option)

    @property
    def names(self) -> list[str]:
        return list(self.sequences)

    def sequence(self, name: str) -> str:
        return self.sequences[name]

    def tokens(self, name: str) -> np.ndarray:
        if name not in self._tokens:
            self._tokens[name] = encode(self.sequences[name], where=f"{self.source}: {name}")
        return self._tokens[name]

    def contig_of(self, name: str, *, where: str = "", query_names: Iterable[str] = ()) -> str:
        """The record id for a contig name used by another file; unknown names are an error."""
        return self.matcher.require(name, where=where, query_names=query_names)
