"""Deterministic, resumable, sharded batches of fragments.

The order of the training set is a function of the seed alone: epoch ``e`` visits
the fragments in ``permutation(seed, e)`` and flips a fragment to its reverse
complement by a coin drawn from the same generator. A run consumes a stream of
global sample positions; step ``s`` takes the ``G = micro_batch x grad_accum x
world_size`` positions after ``samples_seen``, and rank ``r`` reads only its own
contiguous slice of them (``grad_accum`` micro-batches of ``micro_batch``). So
the data position of a run is one integer, and one process with
``grad_accum = K x W`` sees exactly the micro-batches that ``W`` processes see.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dnahnet_core.alphabet import N, reverse_complement_tokens


def collate(fragments: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad with N to the longest fragment; returns (tokens [B, L] int64, mask [B, L] bool)."""
    length = max(len(f) for f in fragments)
    tokens = np.full((len(fragments), length), N, dtype=np.int64)
    mask = np.zeros((len(fragments), length), dtype=bool)
    for row, fragment in enumerate(fragments):
        tokens[row, : len(fragment)] = fragment
        mask[row, : len(fragment)] = True
    return torch.from_numpy(tokens), torch.from_numpy(mask)


class EpochOrder:
    """Per-epoch permutation and reverse-complement coins, derived from the seed."""

    def __init__(self, size: int, seed: int, rc_augment: bool) -> None:
        if size <= 0:
            raise ValueError("empty dataset")
        self.size = size
        self.seed = seed
        self.rc_augment = rc_augment
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if epoch not in self._cache:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(self.size)
            flips = rng.random(self.size) < 0.5
            if not self.rc_augment:
                flips[:] = False
            self._cache = {k: v for k, v in self._cache.items() if k >= epoch - 1}
            self._cache[epoch] = (order, flips)
        return self._cache[epoch]

    def __call__(self, position: int) -> tuple[int, bool]:
        """(fragment index, reverse-complement?) at a global sample position."""
        order, flips = self._epoch(position // self.size)
        offset = position % self.size
        return int(order[offset]), bool(flips[offset])


class ShardedBatches:
    """The micro-batches of one rank for each optimizer step."""

    def __init__(
        self,
        dataset,
        *,
        seed: int,
        micro_batch: int,
        grad_accum: int,
        rank: int = 0,
        world_size: int = 1,
        rc_augment: bool = True,
    ) -> None:
        self.dataset = dataset
        self.micro_batch = micro_batch
        self.grad_accum = grad_accum
        self.rank = rank
        self.world_size = world_size
        self.order = EpochOrder(len(dataset), seed, rc_augment)

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.grad_accum * self.world_size

    def fragment(self, position: int) -> np.ndarray:
        index, flip = self.order(position)
        tokens = np.asarray(self.dataset[index], dtype=np.uint8)
        return reverse_complement_tokens(tokens) if flip else tokens

    def step(self, samples_seen: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's ``grad_accum`` micro-batches of the step starting at ``samples_seen``."""
        start = samples_seen + self.rank * self.micro_batch * self.grad_accum
        batches = []
        for k in range(self.grad_accum):
            first = start + k * self.micro_batch
            positions = range(first, first + self.micro_batch)
            batches.append(collate([self.fragment(p) for p in positions]))
        return batches
