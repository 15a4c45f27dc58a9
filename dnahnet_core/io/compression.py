"""Compressed inputs: the compression is read from the first bytes, never from the name.

Plain, gzip (including bgzip and other multi-member gzip), xz and bz2; used by every
reader of text formats (FASTA, GFF3, GenBank, VCF, GTDB metadata).

    with open_text("genes.gff.xz") as handle: ...      # decompressed text
    with open_binary("genome.fa.gz") as handle: ...    # decompressed bytes
    detect_compression(path)   # 'gzip', 'xz', 'bz2' or 'plain'
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import zlib
from typing import BinaryIO

_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"\xfd7zXZ\x00": "xz",
    b"BZh": "bz2",
}
# text inputs: UTF-8, a leading byte-order mark (Windows editors, Excel) skipped
TEXT_ENCODING = "utf-8-sig"
# what a truncated or corrupt compressed stream raises while it is read
TRUNCATION_ERRORS = (EOFError, zlib.error, lzma.LZMAError, OSError)


def detect_compression(path: str | os.PathLike) -> str:
    """'gzip', 'xz', 'bz2' or 'plain', from the first bytes of the file."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    return compression_of(head)


def compression_of(head: bytes) -> str:
    """'gzip', 'xz', 'bz2' or 'plain' from the first (up to 6) bytes of a stream."""
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    return "plain"


def decompressing_reader(raw: BinaryIO, kind: str) -> BinaryIO:
    """Wrap an open binary stream of compressed bytes in a reader of decompressed bytes."""
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "xz":
        return lzma.LZMAFile(raw, "rb")
    if kind == "bz2":
        return bz2.BZ2File(raw, "rb")
    return raw


def open_binary(path: str | os.PathLike) -> io.BufferedIOBase:
    """Open a possibly compressed file for reading decompressed bytes."""
    kind = detect_compression(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    if kind == "bz2":
        return bz2.open(path, "rb")
    return open(path, "rb")


def open_text(path: str | os.PathLike) -> io.TextIOBase:
    """Open a possibly compressed text file (GFF, VCF-like tables, GenBank)."""
    return io.TextIOWrapper(open_binary(path), encoding=TEXT_ENCODING, errors="replace")
