"""The on-disk fragment format written by ``prepare`` and read by ``FragmentDataset``.

A prepared dataset is a directory::

    manifest.json        written last; "complete": true marks a finished dataset
    summary.txt          the human summary
    genomes.tsv          genome_index, genome_id, split, source, records, nucleotides, fragments
    train/tokens.bin     uint8 tokens (A=0 C=1 G=2 T=3 N=4), fragments back to back
    train/index.bin      int64 little-endian rows (start, length, genome_index)
    val/..., test/...    the same

Fragment ``i`` of a split is ``tokens[start:start + length]``. Nothing in these files
depends on the time or the number of workers, so a re-run gives identical bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from dnahnet_core.errors import DnahnetError

FORMAT = "dnahnet-fragments"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
INDEX_DTYPE = np.dtype("<i8")
INDEX_COLUMNS = 3
TOKENS_FILE = "tokens.bin"
INDEX_FILE = "index.bin"
MANIFEST_FILE = "manifest.json"
GENOMES_FILE = "genomes.tsv"
SUMMARY_FILE = "summary.txt"


class SplitWriter:
    """Appends fragments of one split to ``tokens.bin`` and ``index.bin``."""

    _FLUSH_ROWS = 4096

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._tokens = open(directory / TOKENS_FILE, "wb", buffering=0)
        self._index = open(directory / INDEX_FILE, "wb")
        self._rows: list[tuple[int, int, int]] = []
        self.fragments = 0
        self.nucleotides = 0
        self.genomes: set[int] = set()
        self._pending: tuple | None = None  # (source, offset, length): one copy per run

    def append(self, tokens: bytes, genome_index: int) -> None:
        self._copy_pending()
        view = memoryview(tokens)
        while view:
            view = view[self._tokens.write(view) :]
        self._add_row(len(tokens), genome_index)

    def append_from(self, source, offset: int, length: int, genome_index: int) -> None:
        """Append ``length`` bytes at ``offset`` of the open binary file ``source``;
        contiguous appends from the same source are copied in one go, in the kernel
        where the platform allows (``os.copy_file_range``)."""
        pending = self._pending
        if pending and pending[0] is source and pending[1] + pending[2] == offset:
            self._pending = (source, pending[1], pending[2] + length)
        else:
            self._copy_pending()
            self._pending = (source, offset, length)
        self._add_row(length, genome_index)

    def _copy_pending(self) -> None:
        if self._pending is None:
            return
        source, offset, length = self._pending
        self._pending = None
        _copy_range(source, offset, length, self._tokens)

    def _add_row(self, length: int, genome_index: int) -> None:
        self._rows.append((self.nucleotides, length, genome_index))
        self.nucleotides += length
        self.fragments += 1
        self.genomes.add(genome_index)
        if len(self._rows) >= self._FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._index.write(np.asarray(self._rows, dtype=INDEX_DTYPE).tobytes())
            self._rows = []

    def flush_copies(self) -> None:
        """Finish pending copies (call before the source file is closed)."""
        self._copy_pending()

    def close(self) -> dict:
        self._copy_pending()
        self._flush()
        self._tokens.close()
        self._index.close()
        return {
            "fragments": self.fragments,
            "nucleotides": self.nucleotides,
            "genomes": len(self.genomes),
            "tokens": f"{self.directory.name}/{TOKENS_FILE}",
            "index": f"{self.directory.name}/{INDEX_FILE}",
        }


def _copy_range(source, offset: int, length: int, target) -> None:
    done = 0
    if hasattr(os, "copy_file_range"):
        try:
            while done < length:
                n = os.copy_file_range(
                    source.fileno(), target.fileno(), length - done, offset + done
                )
                if n == 0:
                    break
                done += n
        except OSError:
            pass  # e.g. across file systems on old kernels: fall back to read/write
    while done < length:
        source.seek(offset + done)
        data = source.read(min(length - done, 1 << 20))
        if not data:
            raise OSError(f"{getattr(source, 'name', source)}: unexpected end of scratch file")
        view = memoryview(data)
        while view:
            view = view[target.write(view) :]
        done += len(data)


def read_manifest(directory: str | Path) -> dict:
    """The manifest of a complete dataset; ``DnahnetError`` for anything unfinished or foreign."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not directory.is_dir():
        raise DnahnetError(f"{directory}: not a directory (expected `dnahnet prepare` output)")
    if not path.is_file():
        raise DnahnetError(
            f"{directory}: not a complete prepared dataset (no {MANIFEST_FILE}; "
            "was `dnahnet prepare` interrupted?)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise DnahnetError(f"{path}: unreadable manifest ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DnahnetError(f"{path}: not a dnahnet fragment dataset manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DnahnetError(
            f"{path}: format version {manifest.get('format_version')} is not supported "
            f"(this dnahnet reads version {FORMAT_VERSION})"
        )
    if manifest.get("complete") is not True:
        raise DnahnetError(f"{path}: dataset is marked incomplete")
    return manifest


def check_split_files(directory: Path, manifest: dict, split: str) -> dict:
    """The manifest entry of ``split`` after checking its files have the recorded sizes."""
    splits = manifest.get("splits", {})
    if split not in splits:
        raise DnahnetError(
            f"{directory}: no split {split!r} (splits: {', '.join(splits) or 'none'})"
        )
    entry = splits[split]
    tokens = directory / entry["tokens"]
    index = directory / entry["index"]
    expected = {
        tokens: entry["nucleotides"],
        index: entry["fragments"] * INDEX_COLUMNS * INDEX_DTYPE.itemsize,
    }
    for path, size in expected.items():
        if not path.is_file():
            raise DnahnetError(f"{path}: missing (dataset incomplete)")
        if path.stat().st_size != size:
            raise DnahnetError(
                f"{path}: {path.stat().st_size} bytes, manifest says {size} (dataset damaged)"
            )
    return entry


def read_genomes_table(directory: Path) -> list[str]:
    """Genome ids by genome index, from ``genomes.tsv``."""
    path = directory / GENOMES_FILE
    if not path.is_file():
        raise DnahnetError(f"{path}: missing (dataset incomplete)")
    ids = []
    with open(path, encoding="utf-8") as handle:
        next(handle, None)  # header
        for line in handle:
            ids.append(line.split("\t", 2)[1])
    return ids
