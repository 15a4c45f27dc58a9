"""FASTA reading: every compression, block boundaries, and each bad-input message."""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
from pathlib import Path

import numpy as np
import pytest

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io import fasta
from dnahnet_core.io.compression import detect_compression
from dnahnet_core.io.fasta import (
    iter_token_records,
    load_genome,
    read_fasta,
)

POOL = Path(__file__).parent / "data" / "pool"
LAMBDA = POOL / "phage_lambda_NC_001416.1.fna.gz"


def reference_records(path: Path) -> list[tuple[str, str]]:
    """An independent, naive parse: (id, upper-case sequence) per record."""
    records, header, parts = [], None, []
    with gzip.open(path, "rt") as handle:
        for line in handle:
            if line.startswith(">"):
                if header is not None:
                    records.append((header, "".join(parts)))
                header, parts = line[1:].split()[0], []
            else:
                parts.append(line.strip().upper())
    records.append((header, "".join(parts)))
    return records


def raw_text(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


@pytest.fixture
def variants(tmp_path) -> dict[str, Path]:
    """lambda as plain, gzip, bgzip-like multi-member gzip, xz and bz2 files."""
    text = raw_text(LAMBDA)
    half = len(text) // 2
    files = {
        "plain": (tmp_path / "lambda.fna", text),
        "gzip": (tmp_path / "lambda.fna.gz", gzip.compress(text)),
        "bgzip": (tmp_path / "lambda.bgz", gzip.compress(text[:half]) + gzip.compress(text[half:])),
        "xz": (tmp_path / "lambda.fa.xz", lzma.compress(text)),
        "bz2": (tmp_path / "lambda.fasta.bz2", bz2.compress(text)),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {kind: path for kind, (path, _) in files.items()}


def test_real_genome_matches_independent_parse():
    expected = reference_records(LAMBDA)
    records = list(read_fasta(LAMBDA))
    assert [(r.id, r.sequence) for r in records] == expected
    assert len(records[0].sequence) == 48502  # lambda, NC_001416


def test_every_compression_gives_the_same_records(variants):
    expected = reference_records(LAMBDA)
    for kind, path in variants.items():
        assert detect_compression(path) == ("gzip" if kind == "bgzip" else kind)
        assert [(r.id, r.sequence) for r in read_fasta(path)] == expected, kind


def test_tiny_blocks_split_headers_and_lines(tmp_path, monkeypatch):
    lines = [b"; a comment", b"", b">r1 first record", b"ACGTacgtNN", b"RYKM"]
    lines += [b">r2\r", b"GGGG\r", b"CC\r", b">r3 empty", b">r4", b"T"]
    text = b"\n".join(lines)
    path = tmp_path / "multi.fa"
    path.write_bytes(text)
    for block in (1, 2, 3, 7, 1 << 20):
        monkeypatch.setattr(fasta, "_BLOCK", block)
        records = [(r.id, r.description, r.sequence) for r in read_fasta(path)]
        assert records == [
            ("r1", "r1 first record", "ACGTACGTNNNNNN"),
            ("r2", "r2", "GGGGCC"),
            ("r3", "r3 empty", ""),
            ("r4", "r4", "T"),
        ], block


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_unix_windows_and_old_mac_line_breaks_give_the_same_records(
    tmp_path, monkeypatch, newline
):
    """CR-only line breaks (classic Mac OS) are line breaks, not one long header line."""
    lines = [b"; a comment", b">r1 first", b"ACGTacgt", b"NN", b"", b">r2", b"GG", b""]
    path = tmp_path / "x.fa"
    path.write_bytes(newline.join(lines))
    for block in (1, 2, 3, 7, 1 << 20):
        monkeypatch.setattr(fasta, "_BLOCK", block)
        records = [(r.id, r.description, r.sequence) for r in read_fasta(path)]
        assert records == [("r1", "r1 first", "ACGTACGTNN"), ("r2", "r2", "GG")], block


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_not_fasta_names_the_same_line_whatever_the_line_breaks(tmp_path, monkeypatch, newline):
    lines = [b"", b";one", b"", b" ;two", b"", b"", b"hello", b">r1", b"AC"]
    path = tmp_path / "x.fa"
    path.write_bytes(newline.join(lines))
    for block in (1, 2, 3, 5, 1 << 20):  # a CRLF split between two blocks counts once
        monkeypatch.setattr(fasta, "_BLOCK", block)
        with pytest.raises(DnahnetError, match=r"x\.fa: line 7: not FASTA"):
            list(read_fasta(path))


def test_a_byte_order_mark_is_not_part_of_the_file(tmp_path):
    """Windows editors start UTF-8 text with a byte-order mark."""
    path = tmp_path / "bom.fa"
    path.write_bytes(codecs.BOM_UTF8 + b">r1\r\nACGT\r\n")
    assert [(r.id, r.sequence) for r in read_fasta(path)] == [("r1", "ACGT")]


def test_tokens_are_writable_uint8(tmp_path):
    path = tmp_path / "x.fa"
    path.write_text(">x\nACGTN\n")
    [(record_id, _desc, tokens)] = list(iter_token_records(path))
    assert record_id == "x" and tokens.dtype == np.uint8
    assert tokens.tolist() == [0, 1, 2, 3, 4]
    tokens[0] = 3  # callers may modify their copy


def test_load_genome_and_duplicate_ids(tmp_path):
    assert set(load_genome(LAMBDA)) == {"NC_001416"}
    path = tmp_path / "dup.fa"
    path.write_text(">a\nAC\n>b\nGT\n>a\nTT\n")
    with pytest.raises(DnahnetError, match=r"dup\.fa: duplicate record id 'a'"):
        load_genome(path)


def _truncate(path: Path, tmp_path: Path) -> Path:
    data = path.read_bytes()
    out = tmp_path / ("cut_" + path.name)
    out.write_bytes(data[: len(data) * 2 // 3])
    return out


@pytest.mark.parametrize("kind", ["gzip", "xz", "bz2"])
def test_truncated_stream_names_file(variants, tmp_path, kind):
    cut = _truncate(variants[kind], tmp_path)
    with pytest.raises(DnahnetError, match="truncated or corrupt") as info:
        list(read_fasta(cut))
    assert str(cut) in str(info.value)
    if kind != "bz2":  # bz2 decompresses 900 kB blocks: nothing of lambda comes out before
        assert "in record 'NC_001416'" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\n\n  \n", "empty file"),
        (b"##gff-version 3\nchr1\t.\tgene\n", r"line 1: a GFF3 annotation, not FASTA; "
         r"give the genome's FASTA \(a GFF3 with a ##FASTA section: the lines after it"),
        (b"\n\nhello\n", r"line 3: not FASTA"),
        (b";one\r\n;two\r\nhello\r\n", r"line 3: not FASTA"),
        (b">\nACGT\n", "record 1: FASTA header without a name"),
        (b">seq1\nACGT\nAC-GT\n", r"record seq1: invalid nucleotide '-' at position 7"),
        (b">seq1\nACGT>seq2\nAC\n", r"record 'seq1': '>' inside a sequence line"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not FASTA"),
    ],
)
def test_bad_input_messages(tmp_path, content, message):
    path = tmp_path / "bad.fa"
    path.write_bytes(content)
    with pytest.raises(DnahnetError, match=message) as info:
        list(read_fasta(path))
    assert str(path) in str(info.value)


def test_gzip_of_empty_text_is_an_empty_file(tmp_path):
    path = tmp_path / "empty.fa.gz"
    path.write_bytes(gzip.compress(b""))
    with pytest.raises(DnahnetError, match="empty.fa.gz: empty file"):
        list(read_fasta(path))
