"""Tab-separated result tables of the zero-shot tasks, one writer per table.

Each writer takes the typed results of a task and returns or writes text; number
formats live here so that a table reads the same wherever it is written:

* ``dnahnet likelihood``: ``likelihood_header``/``likelihood_row`` (one row per record),
  ``per_position_header``/``per_position_rows`` (one row per nucleotide, 1-based pos);
* ``dnahnet essentiality``: ``write_ranking`` (``RANKING_COLUMNS``; GFF coordinates);
* ``dnahnet score-dms``: ``write_dms_table`` (one row per score-set row).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from dnahnet_core.alphabet import ALPHABET
from dnahnet_core.io.atomic import atomic_open

if TYPE_CHECKING:  # result types of the tasks layer (io never imports it at run time)
    from dnahnet_core.tasks.dms import DmsVariant
    from dnahnet_core.tasks.essentiality import RankedGene
    from dnahnet_core.tasks.likelihood import SequenceLikelihood


# ---------------------------------------------------------------- likelihood


def likelihood_header() -> str:
    return "id\tlength\ttotal_loglik\tmean_loglik\tbits_per_nt\n"


def likelihood_row(result: SequenceLikelihood) -> str:
    """An empty record keeps its row: length 0, total 0, NA for the per-nucleotide means."""
    mean, bits = (
        (f"{result.mean:.6f}", f"{result.bits_per_nucleotide:.6f}") if result.length
        else ("NA", "NA")
    )
    return f"{result.id}\t{result.length}\t{result.total:.4f}\t{mean}\t{bits}\n"


def per_position_header(num_stages: int) -> str:
    stages = "".join(f"\tstage{s + 1}_boundary_prob" for s in range(num_stages))
    return f"id\tpos\tbase\tlogprob{stages}\n"


def per_position_rows(result: SequenceLikelihood) -> Iterator[str]:
    """One row per nucleotide; pos is 1-based like FASTA/VCF coordinates."""
    probs = result.predictions.boundary_prob
    for t in range(result.length):
        extra = "".join(f"\t{probs[s, t]:.4f}" for s in range(probs.shape[0]))
        base = ALPHABET[result.tokens[t]]
        yield f"{result.id}\t{t + 1}\t{base}\t{result.predictions.log_probs[t]:.5f}{extra}\n"


# ---------------------------------------------------------------- essentiality

RANKING_COLUMNS = [
    "locus_tag", "gene", "product", "contig", "start", "end", "strand", "score", "rank", "note",
    "genome",
]


def _clean(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ")


def write_ranking(handle, results: Sequence[RankedGene]) -> None:
    """The ranking TSV (columns: ``RANKING_COLUMNS``); coordinates 1-based closed as in GFF;
    ``rank`` counts within each genome."""
    handle.write("\t".join(RANKING_COLUMNS) + "\n")
    for r in results:
        g = r.gene
        row = [
            g.label, g.name, g.product, g.contig, str(g.start), str(g.end), g.strand,
            "" if r.score is None else f"{r.score:.6g}",
            "" if r.rank is None else str(r.rank),
            r.note,
            r.genome,
        ]
        handle.write("\t".join(_clean(x) for x in row) + "\n")


# ---------------------------------------------------------------- score-dms


def _number_or_na(value: float) -> str:
    return "NA" if not np.isfinite(value) else f"{value:.4f}"


def write_dms_table(
    output, assays: Sequence[tuple[str, Sequence[DmsVariant]]], reverse_complement: bool
) -> None:
    """One row per score-set row of each assay: its line, HGVS, experimental score, LLRs,
    the baselines' inputs (amino-acid changes, BLOSUM62 of a single substitution), status."""
    columns = ["assay", "line", "hgvs", "score", "llr"]
    if reverse_complement:
        columns += ["llr_forward", "llr_reverse"]
    columns += ["aa_changes", "blosum62", "codons", "status"]
    with atomic_open(output, "w") as handle:
        handle.write("\t".join(columns) + "\n")
        for name, variants in assays:
            for v in variants:
                cells = [_clean(name), str(v.line), v.hgvs, _number_or_na(v.score),
                         _number_or_na(v.llr)]
                if reverse_complement:
                    cells += [_number_or_na(v.llr_forward), _number_or_na(v.llr_reverse)]
                changes = "NA" if v.protein_changes is None else str(len(v.protein_changes))
                blosum = "NA" if np.isnan(v.blosum62) else f"{v.blosum62:g}"
                cells += [changes, blosum, str(len(v.alternatives)), v.status]
                handle.write("\t".join(cells) + "\n")
