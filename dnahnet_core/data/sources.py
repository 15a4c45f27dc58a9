"""Input discovery and per-genome reading for ``prepare``.

Inputs are FASTA files (one genome per file, GTDB style), directories of them,
text files listing paths, or JSON-lines / Parquet tables with a sequence column
(OpenGenome style, one genome per row). Compression is detected from the bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from dnahnet_core.alphabet import encode
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.compression import compression_of, decompressing_reader
from dnahnet_core.io.fasta import iter_token_records

FASTA_SUFFIXES = {".fa", ".fna", ".fasta", ".fas", ".ffn", ".frn", ".seq", ".fsa"}
COMPRESSION_SUFFIXES = {".gz", ".bgz", ".xz", ".bz2"}
TABLE_SUFFIXES = {".jsonl", ".ndjson", ".parquet"}
LIST_SUFFIXES = {".txt", ".list", ".lst", ".fofn"}
ACCESSION = re.compile(r"(GC[AF])_(\d{9})\.(\d+)")


@dataclass(frozen=True)
class Genome:
    """One genome read from a source: its id and an iterator of (record id, tokens)."""

    id: str
    records: Iterator[tuple[str, np.ndarray]]


def strip_suffixes(name: str) -> tuple[str, str]:
    """(stem, kind) with compression and format suffixes removed; kind: fasta/jsonl/parquet."""
    stem = name
    lower = stem.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if lower.endswith(suffix):
            stem, lower = stem[: -len(suffix)], lower[: -len(suffix)]
            break
    for suffix in TABLE_SUFFIXES:
        if lower.endswith(suffix):
            return stem[: -len(suffix)], suffix.lstrip(".").replace("ndjson", "jsonl")
    for suffix in FASTA_SUFFIXES:
        if lower.endswith(suffix):
            return stem[: -len(suffix)], "fasta"
    return stem, "fasta"


def accession_in(name: str) -> str | None:
    """The first GCF_/GCA_ assembly accession in a file name, e.g. 'GCF_000005845.2'."""
    match = ACCESSION.search(name)
    return match.group(0) if match else None


def genome_id_for(path: Path) -> str:
    """A FASTA file's genome id: its assembly accession if named, else its stem."""
    return accession_in(path.name) or strip_suffixes(path.name)[0]


def _looks_like_input(path: Path) -> bool:
    lower = path.name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
            break
    return Path(lower).suffix in FASTA_SUFFIXES | TABLE_SUFFIXES


def _is_path_list(path: Path) -> bool:
    if path.suffix.lower() in LIST_SUFFIXES:
        return True
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if compression_of(head) != "plain" or head.lstrip().startswith((b">", b";", b"{")):
        return False
    first = head.split(b"\n", 1)[0].strip().decode("utf-8", errors="replace")
    return bool(first) and ((path.parent / first).is_file() or Path(first).is_file())


def expand_inputs(inputs: list[str | os.PathLike]) -> tuple[list[Path], list[dict]]:
    """Files to read, in a deterministic order, and the inputs that could not be found.

    Directories are searched recursively for FASTA / JSON-lines / Parquet files
    (sorted by path); list files contribute their lines (relative to the list's folder).
    Missing paths are returned as problems for the caller to raise or skip.
    """
    files: list[Path] = []
    problems: list[dict] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _looks_like_input(p))
            if not found:
                error = f"{path}: no FASTA files in directory"
                problems.append({"path": str(path), "error": error})
            for child in found:
                add(child)
        elif not path.exists():
            problems.append({"path": str(path), "error": f"{path}: no such file or directory"})
        elif not os.access(path, os.R_OK):
            problems.append({"path": str(path), "error": f"{path}: permission denied"})
        elif _is_path_list(path):
            listed, listed_problems = _read_list(path)
            problems.extend(listed_problems)
            for child in listed:
                add(child)
        else:
            add(path)
    return files, problems


def _read_list(path: Path) -> tuple[list[Path], list[dict]]:
    entries, lines = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if line and not line.startswith("#"):
                entry = Path(line)
                entries.append(entry if entry.is_absolute() else path.parent / entry)
                lines.append(number)
    if not entries:
        error = f"{path}: empty file (no FASTA records and no paths listed)"
        return [], [{"path": str(path), "error": error}]
    files, problems = [], []
    for entry, number in zip(entries, lines, strict=True):  # a problem names its list line
        found, missing = expand_inputs([entry])
        files += found
        problems += [{**p, "error": f"{path}: line {number}: {p['error']}"} for p in missing]
    return files, problems


class HashingReader:
    """A read-only binary stream that counts and sha256-hashes the raw bytes it passes on."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def peek(self, n: int = 0) -> bytes:  # not used by the decompressors; keeps io happy
        return b""

    def drain(self) -> None:
        while self.read(_DRAIN_BLOCK):
            pass

    def close(self) -> None:
        self.raw.close()

    @property
    def closed(self) -> bool:
        return self.raw.closed


_DRAIN_BLOCK = 1 << 20


def read_genomes(
    path: Path, stream: BinaryIO, kind: str, sequence_field: str | None, id_field: str | None
) -> Iterator[Genome]:
    """The genomes in one input: one per FASTA file, one per row of a table."""
    if kind == "fasta":
        yield Genome(genome_id_for(path), _fasta_records(path, stream))
    elif kind == "jsonl":
        yield from _jsonl_genomes(path, stream, sequence_field, id_field)
    else:
        yield from _parquet_genomes(path, stream, sequence_field, id_field)


def _fasta_records(path: Path, stream: BinaryIO) -> Iterator[tuple[str, np.ndarray]]:
    seen: set[str] = set()
    compression = "plain" if isinstance(stream, HashingReader) else "compressed"
    records = iter_token_records(path, handle=stream, compression=compression)
    for record_id, _description, tokens in records:
        if record_id in seen:
            raise DnahnetError(f"{path}: duplicate record id {record_id!r}")
        seen.add(record_id)
        yield record_id, tokens


def _pick_field(path: Path, columns, wanted: str | None, where: str) -> str:
    candidates = [wanted] if wanted else ["sequence", "text", "seq"]
    for name in candidates:
        if name in columns:
            return name
    raise DnahnetError(
        f"{path}: {where}: no sequence column {' or '.join(map(repr, candidates))} "
        f"(columns: {', '.join(map(str, columns))}); use --sequence-field"
    )


def _row_genome(path, stem, number, row_id, sequence, field) -> Genome:
    genome_id = str(row_id) if row_id is not None else f"{stem}#{number}"
    if not isinstance(sequence, (str, bytes)):
        raise DnahnetError(f"{path}: row {number}: {field!r} is not a string")
    tokens = encode(sequence, where=f"{path}: row {number}")
    return Genome(genome_id, iter([(genome_id, tokens)]))


def _jsonl_genomes(path, stream, sequence_field, id_field) -> Iterator[Genome]:
    stem = strip_suffixes(path.name)[0]
    field = None
    rows = 0
    for number, line in enumerate(_lines(stream), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise DnahnetError(f"{path}: line {number}: not JSON") from None
        if not isinstance(row, dict):
            raise DnahnetError(f"{path}: line {number}: expected a JSON object")
        field = field or _pick_field(path, row, sequence_field, f"line {number}")
        if field not in row:
            raise DnahnetError(f"{path}: line {number}: no field {field!r}")
        if id_field and id_field not in row:
            raise DnahnetError(f"{path}: line {number}: no field {id_field!r} (--id-field)")
        rows += 1
        row_id = row.get(id_field) if id_field else None
        yield _row_genome(path, stem, number, row_id, row[field], field)
    if rows == 0:
        raise DnahnetError(f"{path}: empty file (no JSON-lines rows)")


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    pending = b""
    while True:
        block = stream.read(_DRAIN_BLOCK)
        if not block:
            break
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending


def _parquet_genomes(path, stream, sequence_field, id_field) -> Iterator[Genome]:
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for bad files
        raise DnahnetError(f"{path}: not a readable Parquet file ({error})") from None
    stem = strip_suffixes(path.name)[0]
    field = _pick_field(path, table.schema_arrow.names, sequence_field, "schema")
    if id_field and id_field not in table.schema_arrow.names:
        raise DnahnetError(f"{path}: no column {id_field!r} (--id-field); columns: "
                           f"{', '.join(table.schema_arrow.names)}")
    columns = [field] + ([id_field] if id_field else [])
    number = 0
    for batch in table.iter_batches(batch_size=16, columns=columns):
        data = batch.to_pydict()
        ids = data.get(id_field) if id_field else None
        for i, sequence in enumerate(data[field]):
            number += 1
            yield _row_genome(path, stem, number, ids[i] if ids else None, sequence, field)
    if number == 0:
        raise DnahnetError(f"{path}: empty file (no Parquet rows)")


def open_source(path: Path) -> tuple[HashingReader, BinaryIO, str, str]:
    """(raw hashing reader, decompressed stream, compression, kind) for one input file."""
    try:
        raw = HashingReader(open(path, "rb"))
    except OSError as error:
        raise DnahnetError(f"{path}: cannot open ({error.strerror})") from None
    head = raw.raw.peek(6)[:6] if hasattr(raw.raw, "peek") else b""
    compression = compression_of(head)
    kind = strip_suffixes(path.name)[1]
    if kind == "parquet":
        return raw, raw, "plain", kind
    return raw, decompressing_reader(raw, compression), compression, kind
