"""The worker side of ``prepare``: read one input file, cut, filter, digest (spawn-safe).

Kept free of rich and other display code, so spawned worker processes import little.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnahnet_core.alphabet import N
from dnahnet_core.data.sources import open_source, read_genomes
from dnahnet_core.errors import DnahnetError


@dataclass
class PrepareOptions:
    fragment_length: int = 8192
    keep_tail: bool = False
    min_tail_length: int = 1024
    max_n_fraction: float = 0.1
    dedup: bool = True
    val_fraction: float = 0.01
    test_fraction: float = 0.01
    seed: int = 0
    metadata: list[str] = field(default_factory=list)
    min_completeness: float = 90.0
    max_contamination: float = 5.0
    representatives_only: bool = False
    sequence_field: str | None = None
    id_field: str | None = None
    workers: int = 1
    skip_bad: bool = False

    def validate(self) -> None:
        if self.fragment_length < 1:
            raise DnahnetError("--fragment-length must be at least 1")
        if self.keep_tail and not 1 <= self.min_tail_length <= self.fragment_length:
            raise DnahnetError("--min-tail-length must be between 1 and --fragment-length")
        if not 0.0 <= self.max_n_fraction <= 1.0:
            raise DnahnetError("--max-n-fraction must be between 0 and 1")
        for name in ("val_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise DnahnetError(f"--{name.replace('_', '-')} must be in [0, 1)")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise DnahnetError("--val-fraction + --test-fraction must be below 1")
        if self.workers < 1:
            raise DnahnetError("--workers must be at least 1")
        if self.representatives_only and not self.metadata:
            raise DnahnetError("--representatives-only needs --metadata (a GTDB metadata TSV)")


def fragment_windows(length: int, options: PrepareOptions) -> tuple[list[tuple[int, int]], bool]:
    """Non-overlapping [start, stop) windows of a record, and whether a tail was dropped."""
    size = options.fragment_length
    full = length // size
    windows = [(i * size, (i + 1) * size) for i in range(full)]
    tail = length - full * size
    if tail and options.keep_tail and tail >= options.min_tail_length:
        windows.append((full * size, length))
        return windows, False
    return windows, bool(tail)


_COMPLEMENT = np.array([3, 2, 1, 0, 4], dtype=np.uint8)


def canonical_digest(forward: bytes, reverse: bytes) -> bytes:
    """A 16-byte digest shared by a fragment and its reverse complement (token bytes)."""
    return hashlib.sha256(min(forward, reverse)).digest()[:16]


def reverse_complement_bytes(tokens: np.ndarray, has_n: bool) -> bytes:
    """Reverse complement of tokens as bytes (A<->T is 0<->3 and C<->G is 1<->2: xor 3)."""
    if has_n:
        return _COMPLEMENT[tokens[::-1]].tobytes()
    return (tokens[::-1] ^ 3).tobytes()


def _cut_record(tokens: np.ndarray, options: PrepareOptions, scratch, stats: dict, out: list):
    """Append (scratch offset, length, digest) of the record's kept windows to ``out``."""
    length = len(tokens)
    windows, tail_dropped = fragment_windows(length, options)
    stats["tails_dropped"] += tail_dropped
    stats["windows"] += len(windows)
    if not windows:
        return
    has_n = length > 0 and int(tokens.max()) >= N
    forward_all = tokens.tobytes()
    reverse_all = reverse_complement_bytes(tokens, has_n) if options.dedup else b""
    kept_from = None  # start of the current run of kept windows (one write per run)
    for start, stop in windows:
        if has_n:
            n_count = int(np.count_nonzero(tokens[start:stop] == N))
            if n_count > options.max_n_fraction * (stop - start):
                stats["dropped_n"] += 1
                if kept_from is not None:
                    scratch.write(forward_all[kept_from:start])
                    kept_from = None
                continue
        digest = b""
        if options.dedup:
            digest = canonical_digest(
                forward_all[start:stop], reverse_all[length - stop : length - start]
            )
        stats["tails_kept"] += stop - start < options.fragment_length
        out.append((stats["scratch_bytes"], stop - start, digest))
        stats["scratch_bytes"] += stop - start
        if kept_from is None:
            kept_from = start
    if kept_from is not None:
        scratch.write(forward_all[kept_from : windows[-1][1]])


def process_file(task: tuple[int, str, str, PrepareOptions]) -> dict:
    """Read one input file; write its kept fragments to a scratch file (runs in a worker)."""
    number, path_text, work_dir, options = task
    path = Path(path_text)
    scratch_path = Path(work_dir) / f"{number:09d}.bin"
    stats = {"windows": 0, "dropped_n": 0, "tails_dropped": 0, "tails_kept": 0, "scratch_bytes": 0}
    genomes = []
    try:
        raw, stream, compression, kind = open_source(path)
        try:
            with open(scratch_path, "wb") as scratch:
                for genome in read_genomes(
                    path, stream, kind, options.sequence_field, options.id_field
                ):
                    fragments: list = []
                    records = nucleotides = 0
                    for _record_id, tokens in genome.records:
                        records += 1
                        nucleotides += len(tokens)
                        _cut_record(tokens, options, scratch, stats, fragments)
                    genomes.append(
                        {
                            "id": genome.id,
                            "records": records,
                            "nucleotides": nucleotides,
                            "fragments": fragments,
                        }
                    )
            raw.drain()
        finally:
            raw.close()
    except DnahnetError as error:
        scratch_path.unlink(missing_ok=True)
        return {"path": str(path), "error": str(error)}
    except OSError as error:
        scratch_path.unlink(missing_ok=True)
        return {"path": str(path), "error": f"{path}: cannot read ({error.strerror or error})"}
    return {
        "path": str(path),
        "bytes": raw.size,
        "sha256": raw.sha256.hexdigest(),
        "compression": compression,
        "format": kind,
        "scratch": str(scratch_path),
        "genomes": genomes,
        "windows": stats["windows"],
        "dropped_n": stats["dropped_n"],
        "tails_dropped": stats["tails_dropped"],
        "tails_kept": stats["tails_kept"],
    }
