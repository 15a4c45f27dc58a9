"""Per-sequence and per-position log-likelihoods of FASTA records (`dnahnet likelihood`).

    score_fasta("in.fa", "out.tsv", model)       # the command: read, score, write
    for result in score_records(model, [("id", "ACGT...")]):   # SequenceLikelihood
        result.total, result.bits_per_nucleotide, result.predictions.log_probs

Records are read one at a time and tiled into windows with ``context`` nucleotides of
left context (``engine.stitched_predictions``); the writers are in ``io.tsv`` (and
``io.bigwig`` for per-base tracks).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnahnet_core.alphabet import encode
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io import tsv
from dnahnet_core.io.atomic import atomic_open, check_outputs
from dnahnet_core.io.bigwig import (
    LOGPROB_DECIMALS,
    LOGPROB_TRACK,
    bigwig_paths,
    boundary_track,
    check_prefix,
    chrom_sizes,
    open_bigwig,
)
from dnahnet_core.io.fasta import iter_token_records, read_fasta
from dnahnet_core.model_source import ModelSource, ready_model
from dnahnet_core.progress import counter
from dnahnet_core.tasks.engine import Predictions, stitched_predictions

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
    context: int = 8192,
    batch_size: int = 8,
    device="auto",
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[SequenceLikelihood]:
    """Score (id, sequence) pairs one sequence at a time (long ones tiled with `context`)."""
    for record_id, sequence in records:
        tokens = encode(sequence, where=f"record {record_id}")
        predictions = stitched_predictions(
            model, tokens, context=context, batch_size=batch_size, device=device,
            on_progress=on_progress,
        )
        yield SequenceLikelihood(record_id, tokens, predictions)


def score_fasta(
    fasta: str | os.PathLike,
    output: str | os.PathLike | None,
    model: ModelSource | object,
    *,
    per_position: bool = False,
    bigwig: str | os.PathLike | None = None,
    context: int = 8192,
    batch_size: int = 8,
    device="auto",
) -> None:
    """``dnahnet likelihood``: a TSV row per record (or per nucleotide), stdout when no output;
    with ``bigwig`` (a prefix P), per-base tracks P.logprob.bw and P.stage<s>.boundary_prob.bw."""
    fasta = Path(fasta)
    if not fasta.exists():
        raise DnahnetError(f"{fasta}: no such file")
    if bigwig is not None:
        check_prefix(bigwig)
    # a first pass checks every record, so that bad input fails before a line is written
    lengths = _record_lengths(fasta, unique_ids=bigwig is not None)
    if bigwig is not None:
        sizes = chrom_sizes(lengths, str(fasta))
    network, device = ready_model(model, device)
    stages = network.config.num_stages
    paths = bigwig_paths(bigwig, range(1, stages + 1), logprob=True) if bigwig else {}
    check_outputs({"--output": output, **{f"--bigwig ({name})": p for name, p in paths.items()}})
    sink = atomic_open(output, "w") if output else contextlib.nullcontext(sys.stdout)
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(sink)
        advance = stack.enter_context(counter("nt", "scoring", total=sum(lengths.values())))
        tracks = {name: stack.enter_context(open_bigwig(p, sizes)) for name, p in paths.items()}
        out.write(tsv.per_position_header(stages) if per_position else tsv.likelihood_header())
        records = ((r.id, r.sequence) for r in read_fasta(fasta))
        for result in score_records(
            network, records, context=context, batch_size=batch_size, device=device,
            on_progress=advance,
        ):
            if per_position:
                out.writelines(tsv.per_position_rows(result))
            else:
                out.write(tsv.likelihood_row(result))
            if tracks and result.length:
                _add_tracks(tracks, result)


def _record_lengths(fasta: Path, unique_ids: bool) -> dict[str, int]:
    """Record id -> length, in file order (every record decoded, so bad input fails here);
    with ``unique_ids`` (a bigWig needs unique names) a repeated id is an error."""
    lengths: dict[str, int] = {}
    for record_id, _, tokens in iter_token_records(fasta):
        if unique_ids and record_id in lengths:
            raise DnahnetError(f"{fasta}: duplicate record id {record_id!r} (--bigwig needs "
                               "unique names)")
        lengths[record_id] = len(tokens)
    return lengths


def _add_tracks(tracks: dict, result: SequenceLikelihood) -> None:
    predictions = result.predictions
    tracks[LOGPROB_TRACK].add(result.id, predictions.log_probs, decimals=LOGPROB_DECIMALS)
    for row, probs in enumerate(predictions.boundary_prob):
        tracks[boundary_track(row + 1)].add(result.id, probs)
