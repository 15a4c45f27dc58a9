"""FragmentDataset returns exactly the fragments prepare wrote, and refuses unfinished dirs."""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from dnahnet_core.data.dataset import FragmentDataset
from dnahnet_core.data.prepare import PrepareOptions, prepare
from dnahnet_core.errors import DnahnetError

POOL = Path(__file__).parent / "data" / "pool"
LAMBDA = POOL / "phage_lambda_NC_001416.1.fna.gz"
PHIX = POOL / "phage_phiX174.fna.gz"
CODE = {"A": 0, "C": 1, "G": 2, "T": 3, "N": 4}


def tokens_of(path: Path) -> np.ndarray:
    with gzip.open(path, "rt") as handle:
        text = "".join(line.strip() for line in handle if not line.startswith(">")).upper()
    return np.array([CODE[c] for c in text], dtype=np.uint8)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "ds"
    options = PrepareOptions(
        fragment_length=2048, keep_tail=True, min_tail_length=100, val_fraction=0, test_fraction=0
    )
    prepare([LAMBDA, PHIX], out, options)
    return out


def test_reader_returns_exactly_the_fragments_written(dataset_dir):
    ds = FragmentDataset(dataset_dir, "train")
    expected = []
    for path in (LAMBDA, PHIX):
        tokens = tokens_of(path)
        expected += [(path, tokens[i : i + 2048]) for i in range(0, len(tokens), 2048)]
    assert len(ds) == len(expected) == 24 + 3  # lambda 23 full + 1 tail, phiX 2 full + 1 tail
    assert ds.fragment_length == 2048
    for i, (path, want) in enumerate(expected):
        got = ds[i]
        assert got.dtype == np.uint8 and np.array_equal(got, want), i
        assert ds.genome_of(i) == path.name.split(".fna")[0]
    assert len(ds[23]) == 48502 - 23 * 2048 and len(ds[-1]) == 5386 - 2 * 2048
    assert np.array_equal(ds[-1], expected[-1][1])
    assert ds.lengths().tolist() == [len(w) for _, w in expected]
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_empty_split_and_pickling(dataset_dir):
    val = FragmentDataset(dataset_dir, "val")
    assert len(val) == 0
    ds = FragmentDataset(dataset_dir, "train")
    clone = pickle.loads(pickle.dumps(ds))
    assert len(pickle.dumps(ds)) < 10_000  # the memory map is not pickled
    assert np.array_equal(clone[5], ds[5]) and clone.genome_of(5) == ds.genome_of(5)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_refuses_incomplete_or_damaged_dirs(dataset_dir, tmp_path):
    with pytest.raises(DnahnetError, match="not a directory"):
        FragmentDataset(tmp_path / "missing")
    no_manifest = _copy(dataset_dir, tmp_path / "a")
    (no_manifest / "manifest.json").unlink()
    with pytest.raises(DnahnetError, match="not a complete prepared dataset"):
        FragmentDataset(no_manifest)
    unfinished = _copy(dataset_dir, tmp_path / "b")
    manifest = json.loads((unfinished / "manifest.json").read_text())
    (unfinished / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(DnahnetError, match="marked incomplete"):
        FragmentDataset(unfinished)
    cut = _copy(dataset_dir, tmp_path / "c")
    tokens = cut / "train" / "tokens.bin"
    tokens.write_bytes(tokens.read_bytes()[:-10])
    with pytest.raises(DnahnetError, match="tokens.bin: .* bytes, manifest says"):
        FragmentDataset(cut)
    with pytest.raises(DnahnetError, match="no split 'dev'"):
        FragmentDataset(dataset_dir, "dev")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "manifest.json").write_text("{")
    with pytest.raises(DnahnetError, match="unreadable manifest"):
        FragmentDataset(tmp_path / "d")
