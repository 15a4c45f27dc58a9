"""Streaming FASTA reading (plain, gzip/bgzip, xz, bz2: ``io.compression``) and writing.

Errors name the file and the line or record: empty files, text that is not
FASTA, truncated compressed streams, invalid nucleotides.

Two levels:

- ``iter_token_records`` is the fast path used by ``prepare``: it reads the
  decompressed stream in 1 MiB blocks, splits records with ``bytes.find`` and
  encodes each record to uint8 tokens in one numpy lookup. Memory: one record.
- ``read_fasta`` / ``load_genome`` give records as upper-case strings on top of it.

``fasta_text`` writes one record (80 nucleotides per line).
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from dnahnet_core.alphabet import INVALID, IUPAC_AMBIGUOUS, N, decode, encode
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.compression import TRUNCATION_ERRORS, detect_compression, open_binary

_BLOCK = 1 << 20
_WHITESPACE = b" \t\r\n\v\f"
_LINE_ENDS = (10, 13)  # "\n" and "\r": Unix, Windows (CRLF) and old Mac (CR only) lines


def _token_table() -> bytes:
    """byte -> token for bytes.translate, the same mapping as ``alphabet.encode``."""
    table = bytearray([INVALID]) * 256
    for token, bases in enumerate(("A", "C", "G", "TU")):
        for base in bases:
            table[ord(base)] = table[ord(base.lower())] = token
    for code in IUPAC_AMBIGUOUS:
        table[ord(code)] = table[ord(code.lower())] = N
    return bytes(table)


_TOKEN_TABLE = _token_table()
_NON_SPACE = re.compile(rb"\S")
_LINE_END = re.compile(rb"[\r\n]")


@dataclass(frozen=True)
class FastaRecord:
    id: str
    description: str
    sequence: str  # upper case, IUPAC ambiguity codes as N


def iter_token_records(
    path: str | os.PathLike, handle: BinaryIO | None = None, compression: str | None = None
) -> Iterator[tuple[str, str, np.ndarray]]:
    """Yield ``(record_id, description, tokens)`` per record, tokens uint8 A=0 C=1 G=2 T=3 N=4.

    ``handle`` is an already opened stream of decompressed bytes (``path`` then only
    names the file in messages, ``compression`` says whether it was compressed); by
    default the file is opened with ``open_binary``.
    """
    path = Path(path)
    if compression is None:
        compression = detect_compression(path)
    compressed = compression != "plain"
    stream = open_binary(path) if handle is None else handle
    parser = _Parser(path)
    # read1 hands over what one step of the decompressor produced, so a truncated
    # stream fails after the data before it was parsed and the message names the record
    read = getattr(stream, "read1", stream.read)
    try:
        try:
            while True:
                block = read(_BLOCK)
                if not block:
                    break
                yield from parser.feed(block)
        except TRUNCATION_ERRORS as error:
            if isinstance(error, DnahnetError):
                raise
            if not compressed:
                raise DnahnetError(f"{path}: cannot read ({error})") from None
            where = parser.where()
            raise DnahnetError(
                f"{path}: compressed stream is truncated or corrupt {where} ({error})"
            ) from None
        yield from parser.finish()
    finally:
        if handle is None:
            stream.close()


def _line_end(data: bytes, pos: int) -> int:
    """Index of the first line break ("\\n" or "\\r") at or after ``pos``; -1 if none."""
    match = _LINE_END.search(data, pos)
    return match.start() if match else -1


def _count_lines(data: bytes, start: int, stop: int) -> int:
    """Line breaks in ``data[start:stop]``: LF, CRLF and a lone CR count one each."""
    return (data.count(b"\n", start, stop) + data.count(b"\r", start, stop)
            - data.count(b"\r\n", start, stop))


class _Parser:
    """Incremental FASTA splitter over blocks of bytes (a small state machine)."""

    START, COMMENT, HEADER, SEQUENCE = range(4)

    def __init__(self, path: Path):
        self.path = path
        self.state = self.START
        self.line = 1  # line number while before the first header (for "not FASTA")
        self.header_parts: list[bytes] = []
        self.header = ""
        self.parts: list[bytes] = []
        self.last_byte = 10  # the byte before the current block ("\n" at file start)
        self.records = 0
        self.consumed = 0

    def where(self) -> str:
        if self.state == self.SEQUENCE:
            return f"in record {self.header.split()[0]!r}"
        return f"after {self.consumed} bytes of decompressed data"

    def feed(self, data: bytes) -> Iterator[tuple[str, str, np.ndarray]]:
        pos, end = 0, len(data)
        while pos < end:
            if self.state == self.SEQUENCE:
                gt = data.find(b">", pos)
                if gt < 0:
                    self.parts.append(data[pos:])
                    break
                before = data[gt - 1] if gt > 0 else self.last_byte
                if before not in _LINE_ENDS:
                    raise DnahnetError(
                        f"{self.path}: record {self.header.split()[0]!r}: "
                        "'>' inside a sequence line"
                    )
                self.parts.append(data[pos:gt])
                yield self._emit()
                self.state, pos = self.HEADER, gt + 1
            elif self.state == self.HEADER:
                newline = _line_end(data, pos)
                if newline < 0:
                    self.header_parts.append(data[pos:])
                    break
                self.header_parts.append(data[pos:newline])
                self._start_record()
                self.state, pos = self.SEQUENCE, newline + 1
            elif self.state == self.COMMENT:
                newline = _line_end(data, pos)
                if newline < 0:
                    break
                self.state, pos = self.START, newline  # START counts the line break
            else:  # START: blank lines and ';' comments may come before the first header
                if self.consumed == 0 and pos == 0 and data.startswith(codecs.BOM_UTF8):
                    pos = len(codecs.BOM_UTF8)  # a byte-order mark (Windows editors)
                    continue
                if pos == 0 and self.last_byte == 13 and data.startswith(b"\n"):
                    self.line -= 1  # a CRLF split between blocks: its CR was counted
                match = _NON_SPACE.search(data, pos)
                if match is None:
                    self.line += _count_lines(data, pos, end)
                    break
                first = match.start()
                self.line += _count_lines(data, pos, first)
                char = data[first]
                if char == ord(">"):
                    self.state, pos = self.HEADER, first + 1
                elif char == ord(";"):
                    self.state, pos = self.COMMENT, first + 1
                elif data.startswith(b"##gff-version", first):
                    raise DnahnetError(
                        f"{self.path}: line {self.line}: a GFF3 annotation, not FASTA; give "
                        "the genome's FASTA (a GFF3 with a ##FASTA section: the lines after "
                        "it, e.g. sed '1,/^##FASTA/d')"
                    )
                else:
                    raise DnahnetError(
                        f"{self.path}: line {self.line}: not FASTA (expected a '>' header line)"
                    )
        self.last_byte = data[-1] if data else self.last_byte
        self.consumed += end

    def finish(self) -> Iterator[tuple[str, str, np.ndarray]]:
        if self.state == self.HEADER:
            self._start_record()
            self.state = self.SEQUENCE
        if self.state == self.SEQUENCE:
            yield self._emit()
        if self.records == 0:
            raise DnahnetError(f"{self.path}: empty file (no FASTA records)")

    def _start_record(self) -> None:
        header = b"".join(self.header_parts).decode("utf-8", errors="replace").strip()
        self.header_parts = []
        if not header:
            raise DnahnetError(
                f"{self.path}: record {self.records + 1}: FASTA header without a name"
            )
        self.header = header
        self.records += 1

    def _emit(self) -> tuple[str, str, np.ndarray]:
        raw = bytearray().join(self.parts)
        self.parts = []
        # one C pass deletes line breaks and maps bytes to tokens
        tokens = raw.translate(_TOKEN_TABLE, _WHITESPACE)
        record_id = self.header.split()[0]
        if INVALID in tokens:  # a memchr; the precise message comes from alphabet.encode
            where = f"{self.path}: record {record_id}"
            encode(bytes(raw.translate(None, _WHITESPACE)), where=where)
        return record_id, self.header, np.frombuffer(tokens, dtype=np.uint8)


def read_fasta(path: str | os.PathLike) -> Iterator[FastaRecord]:
    """Yield the records of a FASTA file one at a time (memory: one record)."""
    for record_id, description, tokens in iter_token_records(path):
        yield FastaRecord(record_id, description, decode(tokens))


def fasta_text(name: str, sequence: str, width: int = 80) -> str:
    """One FASTA record as text: the header line, then ``width`` nucleotides per line."""
    lines = [sequence[i : i + width] for i in range(0, len(sequence), width)]
    return f">{name}\n" + "\n".join(lines) + "\n"


def load_genome(path: str | os.PathLike) -> dict[str, str]:
    """All records of a FASTA file as {id: sequence}; duplicate ids are an error."""
    genome: dict[str, str] = {}
    for record in read_fasta(path):
        if record.id in genome:
            raise DnahnetError(f"{path}: duplicate record id {record.id!r}")
        genome[record.id] = record.sequence
    return genome
