"""Per-sequence and per-position log-likelihoods of FASTA records (`dnahnet likelihood`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from dnahnet_core.alphabet import ALPHABET, encode
from dnahnet_core.tasks.stitching import Predictions, stitched_predictions

LN2 = math.log(2)


@dataclass
class SequenceLikelihood:
    id: str
    tokens: np.ndarray
    predictions: Predictions

    @property
    def length(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def total(self) -> float:
        return float(self.predictions.log_probs.astype(np.float64).sum())

    @property
    def mean(self) -> float:
        return self.total / self.length if self.length else float("nan")

    @property
    def bits_per_nucleotide(self) -> float:
        return -self.mean / LN2


def score_records(
    model,
    records: Iterable[tuple[str, str]],
    *,
    context=8192,
    batch_size=8,
    device="cpu",
    on_progress=None,
) -> Iterator[SequenceLikelihood]:
    """Score (id, sequence) pairs one sequence at a time (long ones tiled with `context`)."""
    for record_id, sequence in records:
        tokens = encode(sequence, where=f"record {record_id}")
        predictions = stitched_predictions(
            model,
            tokens,
            context=context,
            batch_size=batch_size,
            device=device,
            on_progress=on_progress,
        )
        yield SequenceLikelihood(record_id, tokens, predictions)


def summary_header() -> str:
    return "id\tlength\ttotal_loglik\tmean_loglik\tbits_per_nt\n"


def summary_row(result: SequenceLikelihood) -> str:
    return (
        f"{result.id}\t{result.length}\t{result.total:.4f}\t{result.mean:.6f}"
        f"\t{result.bits_per_nucleotide:.6f}\n"
    )


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
