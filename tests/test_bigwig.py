"""bigWig tracks of `segments` and `likelihood`: read back with pyBigWig, compared with the
bedGraph and the per-position TSV written by the same run."""

from __future__ import annotations

import numpy as np
import pytest

from dnahnet_core.io.fasta import load_genome
from tests.conftest import TEST_DATA

pyBigWig = pytest.importorskip("pyBigWig")

MYCO = TEST_DATA / "annotated" / "mycoplasma_subset.fna.gz"
PHIX = TEST_DATA / "pool" / "phage_phiX174.fna.gz"
TINY = ("--config", "dnahnet-tiny")
FLOAT32 = dict(rtol=1e-6, atol=1e-7)  # what storing a value as float32 may change


def run(args):
    from dnahnet_cli.app import run as run_command

    return run_command([str(a) for a in args])


def bedgraph_runs(path):
    """contig -> [(start, end, value)] of a bedGraph (track line skipped)."""
    runs: dict[str, list] = {}
    for line in path.read_text().splitlines():
        if line.startswith("track"):
            continue
        contig, start, end, value = line.split("\t")
        runs.setdefault(contig, []).append((int(start), int(end), float(value)))
    return runs


def per_base(intervals, length):
    values = np.full(length, np.nan)
    for start, end, value in intervals:
        values[start:end] = value
    return values


@pytest.fixture(scope="module")
def myco(tmp_path_factory):
    """The three Mycoplasma contigs of the test data, cut to 4,000, 2,500 and 1,108 nt."""
    path = tmp_path_factory.mktemp("genome") / "myco.fa"
    cuts = zip(load_genome(MYCO).items(), (4000, 2500, 1108), strict=True)
    path.write_text("".join(f">{name}\n{seq[:n]}\n" for (name, seq), n in cuts))
    return path


@pytest.fixture(scope="module")
def myco_lengths(myco):
    return {name: len(seq) for name, seq in load_genome(myco).items()}


@pytest.fixture(scope="module")
def segments_run(tmp_path_factory, myco):
    out = tmp_path_factory.mktemp("segments")
    # --stride as likelihood's (= --context): the same tiles, so the same values
    args = ["segments", myco, *TINY, "--context", 512, "--stride", 512, "--batch-size", 4,
            "-o", out / "c.bed",
            "--bedgraph", out / "p.bedgraph", "--bigwig", out / "tracks" / "myco", "--track"]
    assert run(args) == 0
    return out


@pytest.mark.parametrize("stage", [1, 2])
def test_segments_bigwig_equals_the_bedgraph(segments_run, myco_lengths, stage):
    path = segments_run / "tracks" / f"myco.stage{stage}.boundary_prob.bw"
    graph = bedgraph_runs(segments_run / f"p.stage{stage}.bedgraph")
    with pyBigWig.open(str(path)) as bw:
        assert bw.isBigWig()
        assert bw.chroms() == myco_lengths  # chromosome sizes from the FASTA
        for contig, length in myco_lengths.items():
            intervals = bw.intervals(contig)
            expected = graph[contig]
            assert [(s, e) for s, e, _ in intervals] == [(s, e) for s, e, _ in expected]
            assert intervals[0][0] == 0 and intervals[-1][1] == length
            np.testing.assert_allclose(
                [v for *_, v in intervals], [v for *_, v in expected], **FLOAT32
            )
            values = bw.values(contig, 0, length, numpy=True)
            assert ((values >= 0) & (values <= 1)).all()


def test_segments_bigwig_for_one_stage(tmp_path):
    args = ["segments", PHIX, *TINY, "--context", 256, "--stage", "2", "-o", tmp_path / "c.bed",
            "--bigwig", tmp_path / "phix"]
    assert run(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.bed", "phix.stage2.boundary_prob.bw"]


def test_likelihood_bigwig_equals_the_per_position_tsv(tmp_path, segments_run, myco, myco_lengths):
    tsv = tmp_path / "ll.tsv"
    args = ["likelihood", myco, *TINY, "--context", 512, "--batch-size", 4, "--per-position",
            "-o", tsv, "--bigwig", tmp_path / "ll"]
    assert run(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ll.logprob.bw", "ll.stage1.boundary_prob.bw", "ll.stage2.boundary_prob.bw", "ll.tsv"
    ]
    rows = [line.split("\t") for line in tsv.read_text().splitlines()[1:]]
    for contig, length in myco_lengths.items():
        mine = [r for r in rows if r[0] == contig]
        assert [int(r[1]) for r in mine] == list(range(1, length + 1))
        with pyBigWig.open(str(tmp_path / "ll.logprob.bw")) as bw:
            assert bw.chroms() == myco_lengths
            logprob = per_base(bw.intervals(contig), length)
        np.testing.assert_allclose(logprob, [float(r[3]) for r in mine], rtol=0, atol=1.5e-5)
        assert (logprob < 0).all()
        for stage in (1, 2):
            with pyBigWig.open(str(tmp_path / f"ll.stage{stage}.boundary_prob.bw")) as bw:
                prob = per_base(bw.intervals(contig), length)
            tsv_prob = [float(r[3 + stage]) for r in mine]
            np.testing.assert_allclose(prob, tsv_prob, rtol=0, atol=1.5e-4)
            # the same model, tiles and batches give segments' track exactly
            graph = per_base(bedgraph_runs(segments_run / f"p.stage{stage}.bedgraph")[contig],
                             length)
            np.testing.assert_allclose(prob, graph, **FLOAT32)


def test_empty_records_are_left_out_of_the_header(tmp_path):
    fasta = tmp_path / "g.fa"
    phix = load_genome(PHIX)["phiX174"]
    fasta.write_text(f">b\n{phix[:700]}\n>empty\n\n>a\n{phix[1000:1300]}\n")
    assert run(["likelihood", fasta, *TINY, "--context", 256, "--bigwig", tmp_path / "x"]) == 0
    with pyBigWig.open(str(tmp_path / "x.logprob.bw")) as bw:
        assert bw.chroms() == {"b": 700, "a": 300}
        assert bw.intervals("a")[-1][1] == 300


def test_bigwig_errors_come_before_any_output(tmp_path, capfd):
    fasta = tmp_path / "dup.fa"
    fasta.write_text(">x\nACGTACGT\n>x\nGGGCCC\n")
    assert run(["likelihood", fasta, *TINY, "-o", tmp_path / "o.tsv", "--bigwig",
                tmp_path / "t"]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "duplicate record id 'x'" in err and "dup.fa" in err
    (tmp_path / "adir").mkdir()
    assert run(["segments", PHIX, *TINY, "-o", tmp_path / "c.bed", "--bigwig",
                tmp_path / "adir"]) == 1
    assert "--bigwig takes a file prefix" in capfd.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "dup.fa"]
