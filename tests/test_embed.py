"""`dnahnet embed`: layers, pooling, chunk coordinates, tiling seams, regions and files."""

from __future__ import annotations

import gzip
import json
import sys

import numpy as np
import pytest
import torch

from dnahnet_core.alphabet import encode, reverse_complement_tokens
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.fasta import load_genome
from dnahnet_core.io.genome import Genome
from dnahnet_core.tasks.embeddings import (
    embed_regions,
    embed_sequences,
    embedding_layer,
    read_regions,
)
from dnahnet_core.tasks.windows import plan_tiles
from tests.conftest import TEST_DATA

PHIX = TEST_DATA / "pool" / "phage_phiX174.fna.gz"
LAMBDA = TEST_DATA / "pool" / "phage_lambda_NC_001416.1.fna.gz"
MYCO = TEST_DATA / "annotated" / "mycoplasma_subset.fna.gz"
TINY = ("--config", "dnahnet-tiny")


@pytest.fixture(scope="module")
def tiny():
    from dnahnet_core.model import build_model, load_config

    return build_model(load_config("dnahnet-tiny"), seed=0).eval()


@pytest.fixture(scope="module")
def phix() -> str:
    return next(iter(load_genome(PHIX).values()))


def one(model, sequence, **options):
    """All rows of one sequence (parts joined)."""
    parts = list(embed_sequences(model, [("s", sequence)], device="cpu", **options))
    assert [p.first_row for p in parts] == first_rows(parts)
    join = np.concatenate
    return join([p.starts for p in parts]), join([p.ends for p in parts]), join(
        [p.vectors for p in parts]
    )


def first_rows(parts) -> list[int]:
    """Where each part should start if the parts are consecutive."""
    return [0, *np.cumsum([len(p.starts) for p in parts]).tolist()][:-1]


def layer_output(model, stage, tokens):
    """The hooked layer's output for one untiled forward pass (rows of the level)."""
    _, module = embedding_layer(model, stage)
    seen = []
    hook = module.register_forward_hook(lambda m, a, out: seen.append(out[0]))
    try:
        with torch.inference_mode():
            out = model(torch.from_numpy(tokens.astype(np.int64))[None])
    finally:
        hook.remove()
    return seen[0][0].numpy(), out


# ---------------------------------------------------------------- layers and shapes


def test_layers_are_named_and_sized_from_the_hierarchy(tiny):
    names = [embedding_layer(tiny, s)[0] for s in (0, 1, 2)]
    assert [n.module for n in names] == [
        "backbone.encoder", "backbone.inner.encoder", "backbone.inner.inner"
    ]
    assert [n.width for n in names] == [32, 48, 64]
    assert [n.unit for n in names] == ["nucleotide", "stage-1 chunk", "stage-2 chunk"]
    with pytest.raises(DnahnetError, match="--stage 3: the model has stages 0 to 2"):
        embedding_layer(tiny, 3)
    with pytest.raises(DnahnetError, match="--pool chunks needs --stage 1"):
        one(tiny, "ACGT", pool="chunks")


def test_a_baseline_has_only_stage_0_its_whole_stack():
    from dnahnet_core.model import build_model, load_config

    baseline = build_model(load_config("transformer-small"), seed=0)
    layer, module = embedding_layer(baseline, 0)
    assert layer.module == "backbone" and module is baseline.backbone
    with pytest.raises(DnahnetError, match="stages 0 to 0"):
        embedding_layer(baseline, 1)


@pytest.mark.parametrize("stage, width", [(0, 32), (1, 48), (2, 64)])
def test_shapes_per_pooling(tiny, phix, stage, width):
    seq = phix[:700]
    starts, ends, per_nucleotide = one(tiny, seq, stage=stage, context=256)
    assert per_nucleotide.shape == (700, width) and per_nucleotide.dtype == np.float32
    assert (starts == np.arange(700)).all() and (ends == starts + 1).all()
    starts, ends, vectors = one(tiny, seq, stage=stage, pool="mean", context=256)
    assert vectors.shape == (1, width) and (starts, ends) == ([0], [700])
    if stage:
        starts, ends, vectors = one(tiny, seq, stage=stage, pool="chunks", context=256)
        assert vectors.shape == (len(starts), width) and 1 < len(starts) < 700
        assert starts[0] == 0 and ends[-1] == 700 and (starts[1:] == ends[:-1]).all()
    half = one(tiny, seq, stage=stage, context=256, dtype="float16")[2]
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, per_nucleotide.astype(np.float16))


def test_rows_are_the_hooked_layer_of_an_untiled_pass(tiny, phix):
    """Within one tile: stage 0 is the encoder output without BOS; a chunk's vector is the
    row of the level that the chunk's first nucleotide entered, i.e. the last row of the
    level when the sequence is cut just after that nucleotide (the model is causal)."""
    seq = phix[1000:1400]
    tokens = encode(seq)
    hidden, _ = layer_output(tiny, 0, tokens)
    np.testing.assert_array_equal(one(tiny, seq, context=1024)[2], hidden[1:])
    for stage in (1, 2):
        starts, _, vectors = one(tiny, seq, stage=stage, pool="chunks", context=1024)
        for row in [0, 1, 2, len(starts) // 2, len(starts) - 1]:
            cut, out = layer_output(tiny, stage, tokens[: starts[row] + 1])
            is_boundary = bool(out.stages[stage - 1].boundary_mask[0, -1])
            assert is_boundary or starts[row] == 0  # position 0 always starts a chunk
            np.testing.assert_allclose(vectors[row], cut[-1], rtol=1e-5, atol=1e-5)


def test_the_chunk_at_position_0_without_a_boundary_is_the_bos_chunk(tiny, phix):
    """Its vector is the BOS token's row: the same for every sequence."""
    vectors = []
    for offset in range(0, 4000, 50):
        seq = phix[offset : offset + 60]
        _, out = layer_output(tiny, 1, encode(seq))
        if not out.stages[0].boundary_mask[0, 0]:
            vectors.append(one(tiny, seq, stage=1, pool="chunks")[2][0])
        if len(vectors) == 3:
            break
    assert len(vectors) == 3
    for v in vectors[1:]:
        np.testing.assert_allclose(v, vectors[0], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- pooling


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_mean_pooling_is_the_mean_of_the_per_nucleotide_rows(tiny, phix, stage):
    seq = phix[:900]
    per_nucleotide = one(tiny, seq, stage=stage, context=200, stride=150)[2]
    mean = one(tiny, seq, stage=stage, pool="mean", context=200, stride=150)[2]
    expected = per_nucleotide.astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(mean[0], expected, rtol=1e-5, atol=1e-6)
    if stage:  # per nucleotide: the vector of the chunk holding it
        starts, ends, chunks = one(tiny, seq, stage=stage, pool="chunks", context=200, stride=150)
        np.testing.assert_array_equal(per_nucleotide, np.repeat(chunks, ends - starts, axis=0))


def test_an_empty_sequence_keeps_its_place(tiny):
    parts = list(
        embed_sequences(tiny, [("a", "ACGTAC"), ("empty", ""), ("b", "GGA")], pool="mean")
    )
    assert [p.id for p in parts] == ["a", "empty", "b"]
    assert np.isnan(parts[1].vectors).all() and parts[1].vectors.shape == (1, 32)
    parts = list(embed_sequences(tiny, [("empty", "")], stage=1, pool="chunks"))
    assert len(parts) == 1 and parts[0].vectors.shape == (0, 48)


# ---------------------------------------------------------------- tiling


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_tiling_seams_equal_an_untiled_pass_over_each_tile(tiny, phix, stage):
    """Every kept row equals the untiled pass over its tile's window; the calls the model
    sees are never longer than context + stride (memory is bounded)."""
    context, stride = 96, 64
    seq = phix[2000:2700]
    calls = []
    hook = tiny.register_forward_pre_hook(lambda m, args: calls.append(args[0].shape[1]))
    try:
        pool = "chunks" if stage else "none"
        starts, ends, vectors = one(
            tiny, seq, stage=stage, pool=pool, context=context, stride=stride, batch_size=3
        )
    finally:
        hook.remove()
    assert max(calls) == context + stride
    tiles = plan_tiles(len(seq), context, stride)
    assert len(tiles) >= 6
    for tile in tiles:
        window = seq[tile.start : tile.end]
        w_starts, _, w_vectors = one(tiny, window, stage=stage, pool=pool, context=len(window))
        kept = (starts >= tile.keep_start) & (starts < tile.keep_end)
        local = {int(s): i for i, s in enumerate(w_starts + tile.start)}
        assert kept.any()
        for row in np.flatnonzero(kept):
            np.testing.assert_allclose(
                vectors[row], w_vectors[local[int(starts[row])]], rtol=1e-5, atol=1e-5
            )
    # a tile with less left context gives other values: the context is really used
    shorter = one(tiny, seq[tiles[2].keep_start - 8 :], stage=0, context=1000)[2]
    assert not np.allclose(shorter[8:16], one(tiny, seq, context=context, stride=stride)[2][
        tiles[2].keep_start : tiles[2].keep_start + 8], atol=1e-4)


def test_long_sequences_come_in_parts_of_max_rows(tiny, phix):
    seq = phix[:1000]
    whole = list(embed_sequences(tiny, [("s", seq)], context=200))
    parts = list(embed_sequences(tiny, [("s", seq)], context=200, max_rows=300))
    assert len(whole) == 1 and len(parts) >= 3
    assert all(len(p.starts) <= 300 for p in parts)
    np.testing.assert_array_equal(np.concatenate([p.vectors for p in parts]), whole[0].vectors)
    assert [p.first_row for p in parts] == first_rows(parts)


# ---------------------------------------------------------------- chunk coordinates


def run(args):
    from dnahnet_cli.app import run as run_command

    return run_command([str(a) for a in args])


@pytest.fixture(scope="module")
def two_genomes(tmp_path_factory):
    """phiX174 and the first 3 kb of lambda, as one FASTA (real sequences)."""
    path = tmp_path_factory.mktemp("fasta") / "two.fa"
    lam = next(iter(load_genome(LAMBDA).values()))[:3000]
    path.write_text(f">phiX174\n{load_genome(PHIX)['phiX174']}\n>lambda_3kb\n{lam}\n")
    return path


def test_chunk_coordinates_equal_the_segments_bed(two_genomes, tmp_path):
    options = [*TINY, "--context", 384]  # and the default batch size of both
    assert run(["segments", two_genomes, *options, "--stride", 384, "-o",
                tmp_path / "chunks.bed"]) == 0  # embed tiles like likelihood: stride = context
    bed = [line.split("\t") for line in (tmp_path / "chunks.bed").read_text().splitlines()]
    for stage in (1, 2):
        out = tmp_path / f"chunks{stage}.npz"
        args = ["embed", two_genomes, *options, "--stage", stage, "--pool", "chunks", "-o", out]
        assert run(args) == 0
        with np.load(out) as f:
            ids = f["ids"][f["sequence"]]
            rows = list(zip(ids.tolist(), f["start"].tolist(), f["end"].tolist(), strict=True))
        expected = [(r[0], int(r[1]), int(r[2])) for r in bed if r[3] == f"stage{stage}"]
        assert sorted(rows) == sorted(expected) and len(rows) > 1000


# ---------------------------------------------------------------- regions


REGIONS = (  # real CDS of the Mycoplasma subset (RefSeq GFF3, as BED), both strands
    "NZ_JNJU01000001.1\t0\t834\tcds_plus\t0\t+\n"
    "NZ_JNJU01000001.1\t21146\t21665\tcds_minus\t0\t-\n"
    "NZ_JNJU01000009.1\t293\t1108\t.\t0\t-\n"
    "NZ_KL370825.1\t100\t400\n"
)


def test_regions_are_embedded_on_their_strand(tiny, tmp_path):
    bed = tmp_path / "r.bed"
    bed.write_text(REGIONS)
    genome = Genome.read(MYCO)
    regions = read_regions(bed, genome)
    assert [r.id for r in regions] == [
        "cds_plus", "cds_minus", "NZ_JNJU01000009.1:293-1108(-)", "NZ_KL370825.1:100-400"
    ]
    parts = list(embed_regions(tiny, genome, regions, stage=1, pool="chunks", context=256,
                               device="cpu"))  # where one() runs: the same arithmetic
    assert [p.region for p in parts] == regions
    for part, region in zip(parts, regions, strict=True):
        tokens = genome.tokens(region.contig)[region.start : region.end]
        if region.strand == "-":
            tokens = reverse_complement_tokens(tokens)
        starts, ends, vectors = one(tiny, tokens, stage=1, pool="chunks", context=256)
        np.testing.assert_array_equal(part.vectors, vectors)
        assert part.length == region.end - region.start and ends[-1] == part.length


@pytest.mark.parametrize(
    "line, message",
    [
        ("NZ_JNJU01000009.1\t1000\t1200\n", "line 1: NZ_JNJU01000009.1:1000-1200 ends past"),
        ("chrUnknown\t0\t10\n", "line 1"),
        ("NZ_JNJU01000009.1\t10\t10\n", "line 1: the region NZ_JNJU01000009.1:10 is empty"),
        ("NZ_JNJU01000009.1\t10\t20\tx\t0\tplus\n", "line 1: strand 'plus'"),
    ],
)
def test_bad_regions_name_the_file_and_line(tmp_path, line, message):
    bed = tmp_path / "bad.bed"
    bed.write_text(line)
    with pytest.raises(DnahnetError, match=message.replace("(", r"\(")) as error:
        read_regions(bed, Genome.read(MYCO))
    assert "bad.bed" in str(error.value)


# ---------------------------------------------------------------- files


def read_npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def read_parquet(path):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"dnahnet"])
    width = meta["width"]
    data = {name: table[name].to_numpy() for name in table.column_names if name != "embedding"}
    data["embedding"] = table["embedding"].combine_chunks().flatten().to_numpy().reshape(-1, width)
    data["metadata"] = meta
    return data


def read_h5(path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path) as f:
        data = {k: f[k][()] for k in f}
        data["metadata"] = json.loads(f.attrs["metadata"])
        assert f.attrs["layer"] == data["metadata"]["layer"]
    for key in ("ids", "region_contig", "region_strand"):
        if key in data:
            data[key] = np.array([v.decode() for v in data[key]])
    return data


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_the_three_formats_hold_the_same_rows_and_metadata(tmp_path, dtype):
    bed = tmp_path / "r.bed"
    bed.write_text(REGIONS)
    data = {}
    for suffix in ("npz", "parquet", "h5"):
        out = tmp_path / f"e.{suffix}"
        args = ["embed", "--regions", bed, "--genome", MYCO, *TINY, "--stage", "2",
                "--pool", "chunks", "--context", 256, "--dtype", dtype, "-o", out]
        if suffix == "h5":
            pytest.importorskip("h5py")
        assert run(args) == 0
        data[suffix] = {"npz": read_npz, "parquet": read_parquet, "h5": read_h5}[suffix](out)
    npz = data["npz"]
    meta = json.loads(npz["metadata"].item())
    assert meta["stage"] == 2 and meta["layer"] == "backbone.inner.inner"
    assert meta["pooling"] == "chunks" and meta["dtype"] == dtype and meta["width"] == 64
    assert meta["model"] == "dnahnet-tiny (untrained, seed 0)" and "0-based" in meta["coordinates"]
    assert npz["embedding"].dtype == np.dtype(dtype) and npz["embedding"].shape[1] == 64
    offsets = npz["offsets"]
    assert offsets[0] == 0 and offsets[-1] == len(npz["embedding"]) == len(npz["start"])
    assert (np.diff(offsets) > 0).all()
    assert npz["region_strand"].tolist() == ["+", "-", "-", "."]
    assert npz["lengths"].tolist() == [834, 519, 815, 300]
    for i in range(4):  # every sequence's chunks tile it
        s, e = npz["start"][offsets[i] : offsets[i + 1]], npz["end"][offsets[i] : offsets[i + 1]]
        assert s[0] == 0 and e[-1] == npz["lengths"][i] and (s[1:] == e[:-1]).all()
        assert (npz["sequence"][offsets[i] : offsets[i + 1]] == i).all()
    for other in ("parquet", "h5"):
        d = data[other]
        assert d["metadata"] == meta
        np.testing.assert_array_equal(d["embedding"], npz["embedding"])
        for key in ("sequence", "start", "end"):
            np.testing.assert_array_equal(d[key], npz[key])
    h5 = data["h5"]
    for key in ("ids", "lengths", "offsets", "region_contig", "region_start", "region_end"):
        np.testing.assert_array_equal(h5[key], npz[key])
    parquet = data["parquet"]
    assert parquet["id"].tolist() == npz["ids"][npz["sequence"]].tolist()
    assert parquet["region_start"].tolist() == npz["region_start"][npz["sequence"]].tolist()


def test_mean_rows_from_the_command_match_the_library(tiny, tmp_path):
    out = tmp_path / "mean.npz"
    fasta = tmp_path / "two.fa"
    phix = load_genome(PHIX)["phiX174"]
    fasta.write_text(f">a\n{phix[:1500]}\n>b\n{phix[3000:3800]}\n")
    args = ["embed", fasta, *TINY, "--stage", "1", "--pool", "mean", "--context", 512, "-o", out]
    assert run(args) == 0
    f = read_npz(out)
    assert f["embedding"].shape == (2, 48) and f["ids"].tolist() == ["a", "b"]
    assert f["start"].tolist() == [0, 0] and f["end"].tolist() == [1500, 800]
    for row, seq in enumerate((phix[:1500], phix[3000:3800])):
        np.testing.assert_allclose(
            f["embedding"][row], one(tiny, seq, stage=1, pool="mean", context=512)[2][0],
            rtol=1e-5, atol=1e-6,
        )


def test_standard_input_is_named_in_the_metadata(tmp_path, monkeypatch):
    import io

    phix = load_genome(PHIX)["phiX174"][:300]
    stdin = io.TextIOWrapper(io.BytesIO(f">a\n{phix}\n".encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert run(["embed", "-", *TINY, "--pool", "mean", "-o", tmp_path / "e.npz"]) == 0
    meta = json.loads(read_npz(tmp_path / "e.npz")["metadata"].item())
    assert meta["input"] == "<stdin>"


def test_format_errors_come_before_any_work(tmp_path, monkeypatch, capfd):
    fasta = tmp_path / "a.fa"
    fasta.write_text(">a\nACGTACGT\n")
    assert run(["embed", fasta, *TINY, "-o", tmp_path / "e.txt"]) == 1
    assert "e.txt: name the embedding file .npz, .parquet or .h5" in capfd.readouterr().err
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if the hdf5 extra were not installed
    assert run(["embed", fasta, *TINY, "-o", tmp_path / "e.h5"]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "pip install 'dnahnet[hdf5]'" in err
    npz = tmp_path / "e.npz"
    assert run(["embed", *TINY, "-o", npz]) == 1
    assert "give a FASTA file, or --regions with --genome" in capfd.readouterr().err
    assert run(["embed", fasta, "--regions", fasta, "--genome", fasta, *TINY, "-o", npz]) == 1
    assert "give a FASTA file or --regions, not both" in capfd.readouterr().err
    assert run(["embed", "--regions", fasta, *TINY, "-o", npz]) == 1
    assert "--regions needs --genome" in capfd.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fa"]


def test_a_failed_run_leaves_no_file(tmp_path, capfd):
    fasta = tmp_path / "a.fa"
    with gzip.open(MYCO, "rt") as handle:
        fasta.write_text(handle.read())
    bed = tmp_path / "r.bed"
    bed.write_text("NZ_JNJU01000001.1\t0\t300\nNZ_JNJU01000009.1\t0\t5000\n")
    out = tmp_path / "e.npz"
    assert run(["embed", "--regions", bed, "--genome", fasta, *TINY, "-o", out]) == 1
    assert "r.bed: line 2" in capfd.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fa", "r.bed"]
