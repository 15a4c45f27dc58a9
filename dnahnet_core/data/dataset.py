"""Memory-mapped fragments of a prepared dataset, for training.

    ds = FragmentDataset("prepared_dir", split="train")
    len(ds); ds[i] -> np.ndarray uint8 (length <= ds.fragment_length); ds.genome_of(i) -> str

The files are opened lazily (and again after unpickling), so the dataset can be
handed to DataLoader worker processes without copying the data. Opening a split checks
its index (vectorised, once): every fragment inside ``tokens.bin`` and every genome
number inside the genome table; the token values are checked for the whole file when it
is small (``WHOLE_TOKEN_CHECK_BYTES``) and fragment by fragment as they are read in any
case, so a damaged file is a one-line ``DnahnetError`` naming it, never a crash later.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnahnet_core.alphabet import ALPHABET, VOCAB_SIZE
from dnahnet_core.data.shards import (
    GENOMES_FILE,
    INDEX_COLUMNS,
    INDEX_DTYPE,
    check_split_files,
    read_genomes_table,
    read_manifest,
)
from dnahnet_core.errors import DnahnetError

# tokens.bin files up to this size have every token value checked when a split is opened
# (a vectorised max: ~0.3 s for 1 GiB in the page cache); larger ones only per fragment.
WHOLE_TOKEN_CHECK_BYTES = 256 << 20
_AGAIN = "prepare the dataset again"


def check_data_option(data: str | Path) -> Path:
    """``--data``: a directory that ``dnahnet prepare`` wrote (its files are checked when
    a split is opened)."""
    data = Path(data)
    if not data.exists():
        raise DnahnetError(f"--data {data}: no such directory")
    if not data.is_dir():
        raise DnahnetError(f"--data {data}: a file, not a prepared dataset directory (make "
                           "one with `dnahnet prepare`)")
    return data


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
        if self._length:
            self._open()
            self._check_index()
            if self._tokens.size <= WHOLE_TOKEN_CHECK_BYTES:
                self._check_tokens(self._tokens)

    def _check_index(self) -> None:
        """Every row (start, length, genome) inside tokens.bin and the genome table."""
        path = self.directory / self._entry["index"]
        start, length, genome = (np.asarray(self._index[:, k]) for k in range(INDEX_COLUMNS))
        size = self._tokens.size
        genomes = self.manifest.get("genomes")
        if not isinstance(genomes, int):
            genomes = len(read_genomes_table(self.directory))
        problems = (
            (start < 0, "has a negative start"),
            (length <= 0, "has a length of zero or less"),
            (length > self.fragment_length,
             f"is longer than the fragment length {self.fragment_length}"),
            (start > size - np.maximum(length, 0), "points past the end of tokens.bin"),
            ((genome < 0) | (genome >= genomes),
             f"names a genome outside the genome table ({genomes} genomes)"),
        )
        damaged = np.logical_or.reduce([bad for bad, _ in problems])
        if damaged.any():
            entry = int(np.argmax(damaged))  # the first damaged entry, its first problem
            what = next(what for bad, what in problems if bad[entry])
            raise DnahnetError(f"{path}: damaged (entry {entry} {what}); {_AGAIN}")

    def _check_tokens(self, tokens: np.ndarray, offset: int = 0, fragment: int | None = None):
        """A one-line error if ``tokens`` (at byte ``offset`` of tokens.bin) holds a value
        outside the alphabet."""
        if tokens.size and int(tokens.max()) >= VOCAB_SIZE:
            at = int(np.argmax(np.asarray(tokens) >= VOCAB_SIZE))
            where = f" (fragment {fragment})" if fragment is not None else ""
            raise DnahnetError(
                f"{self.directory / self._entry['tokens']}: damaged (byte {offset + at}{where} "
                f"holds {int(tokens[at])}, not a token 0-{VOCAB_SIZE - 1} of {ALPHABET}); "
                f"{_AGAIN}"
            )

    def _open(self) -> None:
        if self._length == 0:
            self._tokens = np.zeros(0, dtype=np.uint8)
            self._index = np.zeros((0, INDEX_COLUMNS), dtype=INDEX_DTYPE)
            return
        tokens = self.directory / self._entry["tokens"]
        self._tokens = (  # an empty file cannot be mapped (the index check reports it)
            np.memmap(tokens, dtype=np.uint8, mode="r") if tokens.stat().st_size
            else np.zeros(0, dtype=np.uint8)
        )
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
        i = int(i)
        start, length, _genome = (int(v) for v in self._row(i))
        tokens = np.array(self._tokens[start : start + length], dtype=np.uint8)
        self._check_tokens(tokens, start, i % self._length)
        return tokens

    def genome_of(self, i: int) -> str:
        genome = int(self._row(int(i))[2])
        if self._genome_ids is None:
            self._genome_ids = read_genomes_table(self.directory)
        if genome >= len(self._genome_ids):
            raise DnahnetError(
                f"{self.directory / GENOMES_FILE}: {len(self._genome_ids)} genomes, but "
                f"fragment {int(i) % self._length} of {self.split} is from genome {genome} "
                f"(dataset damaged); {_AGAIN}"
            )
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
