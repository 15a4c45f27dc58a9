"""Trivial predictors reported beside the model's metrics, so a number can be judged.

A published re-analysis of the dnaHNet benchmarks found trivial features close to the
paper's numbers (gene length alone AUROC ~0.545 on DEG essentiality; the count of
amino-acid changes Spearman ~0.31 and BLOSUM62 ~0.24 on MaveDB). Every predictor here is
oriented like the model's score it stands beside, fixed in advance (never flipped after
seeing the labels):

* essentiality (higher = predicted essential, like ``-score``): ``gene_length`` (nt of
  the CDS), ``gc_content`` (G+C fraction of the CDS), ``origin_proximity`` (minus the
  distance of the gene's midpoint from position 1 along the shorter arc, as a fraction of
  the contig: complete bacterial chromosomes start at the origin of replication, where
  gene dosage is highest) and ``random`` (uniform, seeded);
* DMS (higher = predicted benign, like the LLR): ``amino_acid_changes`` (minus the
  number of codons whose amino acid changes) and ``blosum62`` (the BLOSUM62 score of the
  substitution, for variants with exactly one amino-acid change; NaN otherwise).

A baseline AUROC below 0.5 means the feature predicts in the other direction: 1 - AUROC
is what the feature would give the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from dnahnet_core.io.annotations import Feature

ESSENTIALITY_BASELINES = {
    "gene_length": "gene length (longer = essential)",
    "gc_content": "GC content (higher = essential)",
    "origin_proximity": "closeness to position 1, the origin (closer = essential)",
    "random": "random score (uniform, seeded)",
}
DMS_BASELINES = {
    "amino_acid_changes": "amino-acid changes (more = damaging)",
    "blosum62": "BLOSUM62 of the substitution (lower = damaging; single substitutions)",
}


def gene_baselines(genes: Sequence[Feature], contigs: dict[str, str]) -> dict[str, np.ndarray]:
    """Length, GC content and closeness to the origin of each gene (the deterministic
    essentiality baselines; ``random_scores`` draws the random one)."""
    length = np.array([g.length for g in genes], dtype=np.float64)
    gc = np.empty(len(genes))
    proximity = np.empty(len(genes))
    for i, gene in enumerate(genes):
        sequence = contigs[gene.contig]
        size = len(sequence)
        bases = "".join(_wrapped(sequence, start - 1, end) for start, end in gene.segments)
        counts = [bases.count(b) for b in "ACGT"]
        gc[i] = (counts[1] + counts[2]) / max(sum(counts), 1)
        middle = ((gene.start - 1 + gene.end) / 2) % size
        proximity[i] = -min(middle, size - middle) / size
    return {"gene_length": length, "gc_content": gc, "origin_proximity": proximity}


def _wrapped(sequence: str, start: int, end: int) -> str:
    """sequence[start:end] for 0-based coordinates that may run past the end (origin)."""
    size = len(sequence)
    if start >= size:
        start, end = start - size, end - size
    return sequence[start:end] if end <= size else sequence[start:] + sequence[: end - size]


def random_scores(count: int, seed: int = 0) -> np.ndarray:
    """The random baseline: ``count`` uniform scores from a seeded generator."""
    return np.random.default_rng(seed).random(count)


@cache
def _blosum62():
    from Bio.Align import substitution_matrices

    return substitution_matrices.load("BLOSUM62")  # NCBI's, with the * (stop) row


def blosum62(reference: str, alternative: str) -> float:
    """BLOSUM62 score of one amino-acid substitution (one-letter codes, ``*`` = stop)."""
    return float(_blosum62()[reference.upper(), alternative.upper()])


def substitution_blosum62(changes: Sequence[tuple[str, str]] | None) -> float:
    """The DMS BLOSUM62 baseline of a variant: the score of its amino-acid change when it
    has exactly one ((reference, alternative) pairs); NaN otherwise."""
    return blosum62(*changes[0]) if changes is not None and len(changes) == 1 else np.nan


def dms_baselines(changes: Sequence[Sequence[tuple[str, str]] | None]) -> dict[str, np.ndarray]:
    """Per variant, from its amino-acid changes ((ref, alt) per changed codon; None when
    unknown), the DMS baselines oriented like the LLR: minus the number of changes, and
    ``substitution_blosum62``."""
    count = np.array([np.nan if c is None else -float(len(c)) for c in changes])
    score = np.array([substitution_blosum62(c) for c in changes], dtype=np.float64)
    return {"amino_acid_changes": count, "blosum62": score}
