"""Deterministic train/val/test assignment by genome (never by fragment)."""

from __future__ import annotations

import hashlib


def split_of(genome_id: str, seed: int, val_fraction: float, test_fraction: float) -> str:
    """'train', 'val' or 'test' from a hash of (seed, genome id): stable across runs and
    machines, independent of input order and worker count."""
    digest = hashlib.blake2b(f"{seed}\t{genome_id}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    if u < val_fraction:
        return "val"
    if u < val_fraction + test_fraction:
        return "test"
    return "train"
