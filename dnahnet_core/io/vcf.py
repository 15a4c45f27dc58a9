"""VCF / BCF reading and VCF writing that keeps every header line and record.

Text VCF (plain or gzip/bgzip) is read line by line so that every error names the
line number; BCF is decoded with pysam (errors name the record number). Records keep
their original text: a writer changes only the INFO column, so everything else
(IDs, QUAL, FILTER, FORMAT, samples) passes through untouched.

    reader = VcfReader("in.vcf.gz")
    reader.header_lines        # '##...' lines then the '#CHROM' line, without newlines
    for record in reader:      # VcfRecord: chrom, pos (1-based), ref, alts, where
        ...
    with vcf_output("out.vcf.gz") as handle:   # atomic; .gz is bgzipped + tabix-indexed
        handle.write(line + "\\n")
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import (
    atomic_path,
    forget_temporary,
    is_special,
    make_temporary_directory,
    resolve_output,
    user_message,
)
from dnahnet_core.io.compression import open_binary, open_text
from dnahnet_core.progress import log

_BASES = re.compile(r"^[ACGTNRYSWKMBDHVacgtnryswkmbdhv]+$")
_CONTIG_LINE = re.compile(r"^##contig=<.*?ID=([^,>]+)")

# ALT allele kinds
BASES, SYMBOLIC, STAR, BREAKEND, MISSING = "bases", "symbolic", "star", "breakend", "missing"


def allele_kind(alt: str) -> str:
    if alt == "*":
        return STAR
    if alt == ".":
        return MISSING
    if alt.startswith("<") and alt.endswith(">"):
        return SYMBOLIC
    if "[" in alt or "]" in alt or alt.startswith(".") or alt.endswith("."):
        return BREAKEND
    if _BASES.match(alt):
        return BASES
    return ""


@dataclass
class VcfRecord:
    fields: list[str]  # the tab-separated columns, as read
    where: str  # "file: line N" (text) or "file: record N" (BCF)

    @property
    def chrom(self) -> str:
        return self.fields[0]

    @property
    def pos(self) -> int:
        return int(self.fields[1])

    @property
    def ref(self) -> str:
        return self.fields[3].upper()

    @property
    def alts(self) -> list[str]:
        return [] if self.fields[4] == "." else self.fields[4].split(",")

    def line(self, info_updates: dict[str, str] | None = None, drop_prefix: str = "") -> str:
        """The record as text, with INFO keys starting ``drop_prefix`` removed and updates added."""
        if not info_updates and not drop_prefix:
            return "\t".join(self.fields)
        info = [] if self.fields[7] in ("", ".") else self.fields[7].split(";")
        if drop_prefix:
            info = [item for item in info if not item.split("=", 1)[0].startswith(drop_prefix)]
        info += [f"{key}={value}" for key, value in (info_updates or {}).items()]
        fields = list(self.fields)
        fields[7] = ";".join(info) if info else "."
        return "\t".join(fields)


def _validate(fields: list[str], where: str) -> None:
    if len(fields) < 8:
        raise DnahnetError(
            f"{where}: expected at least 8 tab-separated VCF columns, found {len(fields)}"
        )
    if not fields[0]:
        raise DnahnetError(f"{where}: empty CHROM")
    if not (fields[1].isascii() and fields[1].isdigit()) or int(fields[1]) < 1:
        raise DnahnetError(f"{where}: POS {fields[1]!r} is not a positive integer")
    if not _BASES.match(fields[3]):
        raise DnahnetError(f"{where}: REF {fields[3]!r} is not a nucleotide sequence")
    if fields[4] != ".":
        for alt in fields[4].split(","):
            if not allele_kind(alt):
                raise DnahnetError(f"{where}: ALT allele {alt!r} is not valid")


class VcfReader:
    """Header and records of a VCF (plain, gzip, bgzip) or BCF file."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DnahnetError(f"{self.path}: no such file")
        with open_binary(self.path) as handle:
            self.is_bcf = handle.read(3) == b"BCF"
        self.header_lines: list[str] = []
        self._records: Iterator[VcfRecord]
        if self.is_bcf:
            self._records = self._read_bcf()
        else:
            self._records = self._read_text()
        self._first = next(self._records, None)  # reads the header

    @property
    def header_contigs(self) -> list[str]:
        names = []
        for line in self.header_lines:
            match = _CONTIG_LINE.match(line)
            if match:
                names.append(match.group(1))
        return names

    def __iter__(self) -> Iterator[VcfRecord]:
        if self._first is not None:
            yield self._first
            self._first = None
        yield from self._records

    def _read_text(self) -> Iterator[VcfRecord]:
        saw_columns = False
        number = 0
        try:
            with open_text(self.path) as handle:
                for number, raw in enumerate(handle, start=1):  # noqa: B007
                    line = raw.rstrip("\r\n")
                    if number == 1 and not line.startswith("##fileformat=VCF"):
                        raise DnahnetError(
                            f"{self.path}: line 1: not a VCF (expected '##fileformat=VCF...')"
                        )
                    if line.startswith("##"):
                        if saw_columns:
                            raise DnahnetError(
                                f"{self.path}: line {number}: header line after #CHROM"
                            )
                        self.header_lines.append(line)
                        continue
                    if line.startswith("#"):
                        if not line.startswith("#CHROM"):
                            raise DnahnetError(f"{self.path}: line {number}: malformed header line")
                        self.header_lines.append(line)
                        saw_columns = True
                        continue
                    if not line.strip():
                        continue
                    where = f"{self.path}: line {number}"
                    if not saw_columns:
                        raise DnahnetError(f"{where}: record before the #CHROM header line")
                    fields = line.split("\t")
                    _validate(fields, where)
                    yield VcfRecord(fields, where)
        except (EOFError, OSError) as error:
            raise DnahnetError(
                f"{self.path}: compressed stream is truncated or corrupt "
                f"after line {number} ({error})"
            ) from None
        if not saw_columns:
            raise DnahnetError(f"{self.path}: no #CHROM header line (not a complete VCF)")

    def _read_bcf(self) -> Iterator[VcfRecord]:
        import pysam

        verbosity = pysam.set_verbosity(0)  # htslib would complain about a missing index
        try:
            handle = pysam.VariantFile(str(self.path))
        except (OSError, ValueError) as error:
            raise DnahnetError(f"{self.path}: cannot read BCF ({error})") from None
        finally:
            pysam.set_verbosity(verbosity)
        with handle:
            self.header_lines = str(handle.header).rstrip("\n").split("\n")
            index = 0
            records = iter(handle)
            while True:
                index += 1
                where = f"{self.path}: record {index}"
                try:
                    record = next(records)
                except StopIteration:
                    return
                except (OSError, ValueError) as error:
                    raise DnahnetError(f"{where}: cannot decode BCF record ({error})") from None
                fields = str(record).rstrip("\n").split("\t")
                _validate(fields, where)
                yield VcfRecord(fields, where)


def with_header_lines(
    header_lines: list[str], new_lines: list[str], drop_prefixes: tuple[str, ...] = ()
) -> list[str]:
    """Header with ``new_lines`` inserted before #CHROM; lines starting with any of
    ``drop_prefixes`` are removed (re-scoring a scored file replaces its fields)."""
    kept = [line for line in header_lines if not line.startswith(drop_prefixes or ("\0",))]
    return kept[:-1] + new_lines + kept[-1:]


@contextlib.contextmanager
def vcf_output(path: str | os.PathLike | None) -> Iterator:
    """A text handle for a VCF; ``None`` or '-' is stdout.

    ``.vcf.gz`` / ``.vcf.bgz``: bgzip-compressed and tabix-indexed (``.tbi`` beside it;
    a file that tabix cannot index, e.g. unsorted, is kept without index and a warning;
    a named pipe or device is written in place, without index).
    Written atomically: nothing is left behind when the block fails.
    """
    if path is None or str(path) == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    if not str(path).endswith((".gz", ".bgz")):
        with atomic_path(path) as tmp, open(tmp, "w") as handle:
            yield handle
        return
    import pysam

    target = resolve_output(path)  # a link is written through, like every output
    special = is_special(target)  # a named pipe or device: no file to rename, no index
    with atomic_path(path) as compressed:
        workdir = make_temporary_directory(
            str(path), prefix=f".{target.name}.", directory=None if special else compressed.parent
        )
        try:
            plain = workdir / "plain.vcf"
            with open(plain, "w") as handle:
                yield handle
            bgzipped = workdir / "out.vcf.gz"
            pysam.tabix_compress(str(plain), str(bgzipped), force=True)
            if special:
                with open(bgzipped, "rb") as source, open(compressed, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
            else:
                _replace_indexed(bgzipped, compressed, target, path)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            forget_temporary(workdir)


def _unsorted(path: Path) -> str | None:
    """Why tabix refuses a VCF whose records are out of order, or None if they are not."""
    import pysam

    seen: dict[str, int] = {}
    last = None
    with pysam.VariantFile(str(path)) as records:
        for record in records:
            if record.chrom != last:
                if record.chrom in seen:
                    return (f"the records of {record.chrom} are not together; sort the input "
                            "first, e.g. bcftools sort")
                seen[record.chrom], last = 0, record.chrom
            if record.pos < seen[last]:
                return (f"{record.chrom}:{record.pos} comes after {record.chrom}:{seen[last]}; "
                        "tabix needs records sorted by position: sort the input first, e.g. "
                        "bcftools sort")
            seen[last] = record.pos
    return None


def _replace_indexed(bgzipped: Path, compressed: Path, target: Path, user) -> None:
    """Index ``bgzipped`` with tabix and move it to ``compressed`` (the temporary name of
    ``target``), its index to ``target.tbi``."""
    import pysam

    verbosity = pysam.set_verbosity(0)  # htslib's own error line names the temporary file
    try:
        pysam.tabix_index(str(bgzipped), preset="vcf", force=True)
    except (OSError, ValueError) as error:
        reason = _unsorted(bgzipped) or user_message(str(error))
        log(f"warning: {user}: written without a tabix index ({reason})")
    finally:
        pysam.set_verbosity(verbosity)
    os.replace(bgzipped, compressed)
    index, built = Path(f"{target}.tbi"), Path(f"{bgzipped}.tbi")
    if built.exists():
        os.replace(built, index)
    else:  # an index of the file this one replaces would be wrong
        index.unlink(missing_ok=True)
