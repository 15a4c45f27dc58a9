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


def _rows(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype="<i8").reshape(-1, 3)


@pytest.mark.parametrize(
    "column, value, message",
    [
        (0, 10**12, r"entry 5 points past the end of tokens.bin"),
        (1, 4096, r"entry 5 is longer than the fragment length 2048"),
        (0, -3, r"entry 5 has a negative start"),
        (2, 2, r"entry 5 names a genome outside the genome table \(2 genomes\)"),
    ],
)
def test_a_damaged_index_is_refused_when_the_split_is_opened(dataset_dir, tmp_path, column,
                                                              value, message):
    """index.bin of the right size but wrong rows: a one-line error naming it, not an
    IndexError from genome_of or empty fragments that score 0 bits."""
    damaged = _copy(dataset_dir, tmp_path / "ds")
    index = damaged / "train" / "index.bin"
    rows = _rows(index)
    rows[5, column] = value
    rows.tofile(index)
    with pytest.raises(DnahnetError, match=rf"^{index}: damaged \({message}\); prepare the "
                                           "dataset again$"):
        FragmentDataset(damaged, "train")


def test_an_index_of_random_bytes_is_refused(dataset_dir, tmp_path):
    damaged = _copy(dataset_dir, tmp_path / "ds")
    index = damaged / "train" / "index.bin"
    index.write_bytes(np.random.default_rng(0).bytes(index.stat().st_size))
    with pytest.raises(DnahnetError, match=rf"^{index}: damaged \(entry 0 "):
        FragmentDataset(damaged, "train")
    assert len(FragmentDataset(damaged, "val")) == 0  # the other splits still open


def test_out_of_range_tokens_are_refused(dataset_dir, tmp_path, monkeypatch):
    """Every 7th byte of tokens.bin set to 200: refused when the split is opened (small
    files), or when a damaged fragment is read (files over the whole-file check size)."""
    damaged = _copy(dataset_dir, tmp_path / "ds")
    path = damaged / "train" / "tokens.bin"
    tokens = np.fromfile(path, dtype=np.uint8)
    tokens[3 * 2048 + 10 :: 7] = 200
    tokens.tofile(path)
    wanted = rf"^{path}: damaged \(byte {3 * 2048 + 10}%s holds 200, not a token 0-4 of ACGTN\)"
    with pytest.raises(DnahnetError, match=wanted % ""):
        FragmentDataset(damaged, "train")
    import dnahnet_core.data.dataset as dataset_module

    monkeypatch.setattr(dataset_module, "WHOLE_TOKEN_CHECK_BYTES", 0)
    ds = FragmentDataset(damaged, "train")
    assert np.array_equal(ds[2], FragmentDataset(dataset_dir, "train")[2])  # before the damage
    with pytest.raises(DnahnetError, match=wanted % r" \(fragment 3\)"):
        ds[3]


def test_evaluate_says_why_there_are_no_baselines(tmp_path):
    """An all-N training split scored on itself, and a dataset whose train split is
    empty: no baselines, and the note says which (not 'no training split')."""
    from dnahnet_core.model import build_model, load_config
    from dnahnet_core.train.evaluate import evaluate_dataset

    model = build_model(load_config("dnahnet-tiny"), seed=0).eval()
    all_n = tmp_path / "n.fa"
    all_n.write_text(">n\n" + "N" * 600 + "\n>acgt\n" + "ACGT" * 50 + "NNNN" * 100 + "\n")
    out = tmp_path / "n"
    prepare([all_n], out, PrepareOptions(fragment_length=200, max_n_fraction=1.0,
                                         val_fraction=0, test_fraction=0))
    result = evaluate_dataset(model, out, "train", device="cpu", max_fragments=1)
    assert result["baselines"] == {}
    assert "scored train fragment(s) hold no A, C, G or T (all N)" in result["baselines_note"]
    assert "training split" not in result["baselines_note"]
    # at --val-fraction 0.49 --test-fraction 0.5 both genomes land outside train
    empty_train = tmp_path / "e"
    prepare([LAMBDA, PHIX], empty_train,
            PrepareOptions(fragment_length=2048, val_fraction=0.49, test_fraction=0.5))
    assert len(FragmentDataset(empty_train, "train")) == 0
    split = "val" if len(FragmentDataset(empty_train, "val")) else "test"
    result = evaluate_dataset(model, empty_train, split, device="cpu", max_fragments=2)
    assert result["baselines"] == {}
    assert result["baselines_note"].startswith("the training split is empty")
    from dnahnet_core.data.markov import baseline_lines  # what `dnahnet evaluate` prints

    assert baseline_lines(result["baselines"], result["baselines_note"]) == [
        f"baselines: none ({result['baselines_note']})"]
