"""Embedding files: .npz (numpy), .parquet (pyarrow), .h5 (h5py, the ``hdf5`` extra).

    with open_embedding_writer("out.npz", metadata, width=128, dtype="float32") as writer:
        for part in parts:          # tasks.embeddings.SequenceEmbedding, in order
            writer.add(part)
    writer.sequences, writer.rows

One layout in every format (row = one vector; sequence = one FASTA record or region):

| name | shape | what |
|---|---|---|
| ``embedding`` | [rows, width] float32/float16 | the vectors |
| ``sequence`` | [rows] int32 | the row's sequence (index into the per-sequence arrays) |
| ``start``, ``end`` | [rows] int64 | the row's interval in its sequence (0-based, half-open) |
| ``ids``, ``lengths`` | [sequences] | sequence names and lengths (nt) |
| ``offsets`` | [sequences + 1] int64 | rows of sequence i: ``offsets[i]:offsets[i+1]`` |
| ``region_contig``, ``region_start``, | [sequences] | the regions (with ``--regions`` |
| ``region_end``, ``region_strand`` | | only; BED coordinates) |
| ``metadata`` | JSON text | model, stage, layer, pooling, dtype, coordinates |

Parquet holds one table of rows: columns ``sequence``, ``id``, ``start``, ``end``, the
``region_*`` columns, and ``embedding`` (a fixed-size list); the per-sequence arrays are
implied by the rows, the metadata is the schema's ``dnahnet`` key. HDF5 has the arrays
as datasets and the metadata as the ``metadata`` attribute (plus one attribute per
scalar). In .npz, ``metadata`` is a 0-d text array: ``json.loads(f["metadata"].item())``.

Memory: rows are written as they come; .npz spools its row arrays to temporary files
beside the output (a zip member needs its final size first) and assembles the archive
at the end. Everything is written under a temporary name (``atomic``).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import atomic_path, forget_temporary, register_temporary

if TYPE_CHECKING:
    from dnahnet_core.tasks.embeddings import SequenceEmbedding

FORMATS = {".npz": "npz", ".parquet": "parquet", ".h5": "hdf5", ".hdf5": "hdf5"}
NEEDS = {"parquet": ("pyarrow", "pyarrow"), "hdf5": ("h5py", "hdf5")}  # module, extra
PARQUET_ROW_GROUP = 65536


def output_format(path: str | os.PathLike) -> str:
    """The format a file name asks for, from its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DnahnetError(
            f"{path}: name the embedding file .npz, .parquet or .h5 (the suffix picks the format)"
        )
    return FORMATS[suffix]


def check_output_format(path: str | os.PathLike) -> str:
    """``output_format``, failing now when the format's package is not installed."""
    kind = output_format(path)
    if kind in NEEDS:
        module, extra = NEEDS[kind]
        try:
            importlib.import_module(module)
        except ImportError:
            raise DnahnetError(
                f"{path}: writing {kind} needs {module}: pip install 'dnahnet[{extra}]'"
            ) from None
    return kind


class _Writer:
    """The per-sequence table every format shares; formats write the rows."""

    def __init__(self, path: Path, metadata: dict, width: int, dtype: str, regions: bool):
        self.path, self.metadata, self.width = path, metadata, width
        self.dtype, self.regions = np.dtype(dtype), regions
        self.ids: list[str] = []
        self.lengths: list[int] = []
        self.offsets: list[int] = [0]
        self.region_fields: list[tuple[str, int, int, str]] = []
        self.rows = 0

    @property
    def sequences(self) -> int:
        return len(self.ids)

    def add(self, part: SequenceEmbedding) -> None:
        if part.first_row == 0:
            self.ids.append(part.id)
            self.lengths.append(part.length)
            self.offsets.append(self.offsets[-1])
            if self.regions:
                r = part.region
                self.region_fields.append((r.contig, r.start, r.end, r.strand))
        n = len(part.starts)
        if n:
            vectors = np.ascontiguousarray(part.vectors, dtype=self.dtype).reshape(n, self.width)
            self._rows(len(self.ids) - 1, part, vectors)
        self.rows += n
        self.offsets[-1] += n

    def tables(self) -> dict[str, np.ndarray]:
        """The per-sequence arrays (names as in the module docstring)."""
        table = {
            "ids": np.array(self.ids, dtype=str),
            "lengths": np.array(self.lengths, dtype=np.int64),
            "offsets": np.array(self.offsets, dtype=np.int64),
        }
        if self.regions:
            contigs, starts, ends, strands = zip(*self.region_fields) if self.ids else ([],) * 4
            table["region_contig"] = np.array(contigs, dtype=str)
            table["region_start"] = np.array(starts, dtype=np.int64)
            table["region_end"] = np.array(ends, dtype=np.int64)
            table["region_strand"] = np.array(strands, dtype=str)
        return table

    def _rows(self, sequence: int, part: SequenceEmbedding, vectors: np.ndarray) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError


class _Spool:
    """A growing array of fixed row shape in a temporary file beside the output."""

    def __init__(self, path: Path, user: str, dtype, row_shape: tuple[int, ...]):
        self.path, self.dtype, self.row_shape, self.count = path, np.dtype(dtype), row_shape, 0
        register_temporary(path, user)
        self.handle = open(path, "wb")

    def append(self, values: np.ndarray) -> None:
        self.handle.write(np.ascontiguousarray(values, dtype=self.dtype).tobytes())
        self.count += len(values)

    def copy_to(self, archive: zipfile.ZipFile, name: str) -> None:
        """Write the spooled rows as ``name``.npy into ``archive``."""
        self.handle.close()
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": (self.count, *self.row_shape),
        }
        with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            with open(self.path, "rb") as source:
                shutil.copyfileobj(source, member, 1 << 20)

    def remove(self) -> None:
        self.handle.close()
        self.path.unlink(missing_ok=True)
        forget_temporary(self.path)


class _Npz(_Writer):
    def __init__(self, tmp: Path, user: str, *args):
        super().__init__(tmp, *args)
        self.spools = {
            "embedding": _Spool(Path(f"{tmp}.embedding"), user, self.dtype, (self.width,)),
            "sequence": _Spool(Path(f"{tmp}.sequence"), user, np.int32, ()),
            "start": _Spool(Path(f"{tmp}.start"), user, np.int64, ()),
            "end": _Spool(Path(f"{tmp}.end"), user, np.int64, ()),
        }

    def _rows(self, sequence, part, vectors) -> None:
        self.spools["embedding"].append(vectors)
        self.spools["sequence"].append(np.full(len(vectors), sequence, dtype=np.int32))
        self.spools["start"].append(part.starts)
        self.spools["end"].append(part.ends)

    def finish(self) -> None:
        with zipfile.ZipFile(self.path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, spool in self.spools.items():
                spool.copy_to(archive, name)
            arrays = {**self.tables(), "metadata": np.array(json.dumps(self.metadata))}
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)

    def close(self) -> None:
        for spool in self.spools.values():
            spool.remove()


class _Parquet(_Writer):
    def __init__(self, tmp: Path, user: str, *args):
        import pyarrow as pa
        import pyarrow.parquet as pq

        super().__init__(tmp, *args)
        self.pa = pa
        fields = [
            ("sequence", pa.int32()), ("id", pa.string()), ("start", pa.int64()),
            ("end", pa.int64()),
        ]
        if self.regions:
            fields += [
                ("region_contig", pa.string()), ("region_start", pa.int64()),
                ("region_end", pa.int64()), ("region_strand", pa.string()),
            ]
        value = pa.from_numpy_dtype(self.dtype)
        fields.append(("embedding", pa.list_(value, self.width)))
        self.schema = pa.schema(fields, metadata={"dnahnet": json.dumps(self.metadata)})
        self.writer = pq.ParquetWriter(str(tmp), self.schema)
        self.buffer: list = []
        self.buffered = 0

    def _rows(self, sequence, part, vectors) -> None:
        pa, n = self.pa, len(vectors)
        columns = [
            pa.array(np.full(n, sequence, dtype=np.int32)),
            pa.array([part.id] * n, pa.string()),
            pa.array(part.starts, pa.int64()),
            pa.array(part.ends, pa.int64()),
        ]
        if self.regions:
            r = part.region
            columns += [
                pa.array([r.contig] * n, pa.string()), pa.array(np.full(n, r.start)),
                pa.array(np.full(n, r.end)), pa.array([r.strand] * n, pa.string()),
            ]
        columns.append(pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), self.width))
        self.buffer.append(pa.Table.from_arrays(columns, schema=self.schema))
        self.buffered += n
        if self.buffered >= PARQUET_ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self.buffer:
            table = self.pa.concat_tables(self.buffer)
            self.writer.write_table(table, row_group_size=PARQUET_ROW_GROUP)
        self.buffer, self.buffered = [], 0

    def finish(self) -> None:
        self._flush()
        self.writer.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class _Hdf5(_Writer):
    def __init__(self, tmp: Path, user: str, *args):
        import h5py

        super().__init__(tmp, *args)
        self.file = h5py.File(tmp, "w")
        chunk = max(1, min(4096, (1 << 20) // max(1, self.width * self.dtype.itemsize)))
        self.datasets = {
            "embedding": self.file.create_dataset(
                "embedding", (0, self.width), self.dtype, maxshape=(None, self.width),
                chunks=(chunk, self.width),
            ),
        }
        for name, dtype in (("sequence", np.int32), ("start", np.int64), ("end", np.int64)):
            self.datasets[name] = self.file.create_dataset(
                name, (0,), dtype, maxshape=(None,), chunks=(8192,)
            )

    def _rows(self, sequence, part, vectors) -> None:
        values = {
            "embedding": vectors,
            "sequence": np.full(len(vectors), sequence, dtype=np.int32),
            "start": part.starts,
            "end": part.ends,
        }
        for name, array in values.items():
            dataset = self.datasets[name]
            first = dataset.shape[0]
            dataset.resize(first + len(array), axis=0)
            dataset[first:] = array

    def finish(self) -> None:
        import h5py

        for name, array in self.tables().items():
            if array.dtype.kind == "U":
                self.file.create_dataset(name, data=array.astype(object),
                                         dtype=h5py.string_dtype())
            else:
                self.file.create_dataset(name, data=array)
        self.file.attrs["metadata"] = json.dumps(self.metadata)
        for key, value in self.metadata.items():
            if isinstance(value, (str, int, float)):
                self.file.attrs[key] = value
        self.file.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.file.close()


WRITERS = {"npz": _Npz, "parquet": _Parquet, "hdf5": _Hdf5}


@contextlib.contextmanager
def open_embedding_writer(
    path: str | os.PathLike,
    metadata: dict,
    width: int,
    dtype: str = "float32",
    *,
    regions: bool = False,
) -> Iterator[_Writer]:
    """A writer of ``SequenceEmbedding`` parts; the file appears when the block succeeds.

    ``regions``: the parts carry ``region`` (BED input) and the region columns are written.
    """
    kind = check_output_format(path)
    with atomic_path(path) as tmp:
        writer = WRITERS[kind](tmp, str(path), metadata, width, dtype, regions)
        try:
            yield writer
            writer.finish()
        finally:
            writer.close()
