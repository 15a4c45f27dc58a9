"""Memory-mapped fragments of a prepared dataset, for training.

    ds = FragmentDataset("prepared_dir", split="train")
    len(ds); ds[i] -> np.ndarray uint8 (length <= ds.fragment_length); ds.genome_of(i) -> str

The files are opened lazily (and again after unpickling), so the dataset can be
handed to DataLoader worker processes without copying the data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnahnet_core.data.shards import (
    INDEX_COLUMNS,
    INDEX_DTYPE,
    check_split_files,
    read_genomes_table,
    read_manifest,
)


class FragmentDataset:
    def __init__(self, directory: str | Path, split: str = "train"):
        self.directory = Path(directory)
        self.split = split
        self.manifest = read_manifest(self.directory)
        self._entry = check_split_files(self.directory, self.manifest, split)
        self.fragment_length = int(self.manifest["fragment_length"])
        self._length = int(self._entry["fragments"])
        self._tokens: np.ndarray | None = None
        self._index: np.ndarray | None = None
        self._genome_ids: list[str] | None = None

    def _open(self) -> None:
        if self._length == 0:
            self._tokens = np.zeros(0, dtype=np.uint8)
            self._index = np.zeros((0, INDEX_COLUMNS), dtype=INDEX_DTYPE)
            return
        self._tokens = np.memmap(self.directory / self._entry["tokens"], dtype=np.uint8, mode="r")
        self._index = np.memmap(
            self.directory / self._entry["index"], dtype=INDEX_DTYPE, mode="r"
        ).reshape(-1, INDEX_COLUMNS)

    def __len__(self) -> int:
        return self._length

    def _row(self, i: int) -> np.ndarray:
        if not -self._length <= i < self._length:
            raise IndexError(f"fragment {i} out of range ({self._length} in {self.split})")
        if self._index is None:
            self._open()
        return self._index[i]

    def __getitem__(self, i: int) -> np.ndarray:
        start, length, _genome = (int(v) for v in self._row(int(i)))
        return np.array(self._tokens[start : start + length], dtype=np.uint8)

    def genome_of(self, i: int) -> str:
        genome = int(self._row(int(i))[2])
        if self._genome_ids is None:
            self._genome_ids = read_genomes_table(self.directory)
        return self._genome_ids[genome]

    def lengths(self) -> np.ndarray:
        """The length of every fragment (int64), without reading tokens."""
        if self._index is None:
            self._open()
        return np.asarray(self._index[:, 1])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_tokens"] = state["_index"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"FragmentDataset({str(self.directory)!r}, split={self.split!r}: "
            f"{self._length} fragments of <= {self.fragment_length} nt)"
        )
