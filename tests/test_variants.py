"""score-variants on real genome data: allele kinds, contig ends, REF checks, names, outputs."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pysam
import pytest
import torch

from dnahnet_core.alphabet import encode, reverse_complement_tokens
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.fasta import load_genome
from dnahnet_core.model import build_model, load_config
from dnahnet_core.tasks.variants import ScoreOptions, score_vcf

DEMO = Path(__file__).resolve().parent.parent / "dnahnet_core" / "demo_data"
W = 256
A, B = "NZ_JNJU01000008.1", "NZ_JNJU01000009.1"  # 2683 nt and 1108 nt Mycoplasma contigs
HEADER = (
    "##fileformat=VCFv4.2\n"
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
    f"##contig=<ID={A},length=2683>\n##contig=<ID={B},length=1108>\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
)


@pytest.fixture(scope="module")
def model():
    return build_model(load_config("dnahnet-tiny"), seed=0).eval()


@pytest.fixture(scope="module")
def genome():
    full = load_genome(DEMO / "mycoplasma_alvi.fna.gz")
    return {A: full[A], B: full[B]}


@pytest.fixture(scope="module")
def fasta(genome, tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "genome.fa.gz"
    with gzip.open(path, "wt") as handle:
        for name, seq in genome.items():
            handle.write(f">{name} Mycoplasmoides alvi\n{seq}\n")
    return path


def _other(base: str, shift: int = 1) -> str:
    return "ACGT"[("ACGT".index(base) + shift) % 4]


@pytest.fixture(scope="module")
def records(genome):
    a, b = genome[A], genome[B]

    def ref(pos, n=1, seq=a):
        return seq[pos - 1 : pos - 1 + n]

    return [
        (A, 1000, "snv", ref(1000), _other(ref(1000))),
        (A, 1200, "mnv", ref(1200, 3), "".join(_other(x) for x in ref(1200, 3))),
        (A, 1400, "ins", ref(1400), ref(1400) + "TTG"),
        (A, 1600, "del", ref(1600, 5), ref(1600)),
        (A, 1800, "multi", ref(1800), f"{_other(ref(1800), 1)},{_other(ref(1800), 2)}"),
        (A, 1800, "split", ref(1800), _other(ref(1800), 3)),
        (A, 2000, "symbolic", ref(2000), "<DEL>"),
        (A, 2100, "star", ref(2100), f"{_other(ref(2100))},*"),
        (A, 2200, "breakend", ref(2200), f"{ref(2200)}]{A}:100]"),
        (A, 2300, "mismatch", _other(ref(2300)), _other(ref(2300), 2)),
        (A, 2400, "ambiguous", ref(2400), f"{_other(ref(2400))},R"),
        (A, 2500, "n_alt", ref(2500), "N"),
        (B, 5, "edge", ref(5, seq=b), _other(ref(5, seq=b))),
    ]


def _write_vcf(path: Path, rows, chrom_names=None) -> Path:
    lines = [HEADER.rstrip("\n")]
    for i, (chrom, pos, name, ref, alt) in enumerate(rows):
        chrom = chrom_names.get(chrom, chrom) if chrom_names else chrom
        lines.append(f"{chrom}\t{pos}\t{name}\t{ref}\t{alt}\t50\tPASS\tDP={10 + i}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _direct_llr(model, seq: str, pos: int, ref: str, alt: str, circular=False) -> float:
    """The definition, written out: two windows, full forwards, both strands."""
    start = pos - 1
    left = (W - len(ref)) // 2
    if circular:
        rotated = seq[start - left :] + seq[: start - left]
        ref_win, rest = rotated[:W], rotated[left + len(ref) :]
    else:
        lo = max(0, start - left)
        ref_win = seq[lo : start - left + W]
        rest = seq[start + len(ref) :]
        left = start - lo
    alt_win = (ref_win[:left] + alt + rest)[: len(ref_win)]
    totals = []
    for text in (ref_win, alt_win):
        tokens = encode(text)
        rows = torch.from_numpy(np.stack([tokens, reverse_complement_tokens(tokens)]).astype(int))
        with torch.inference_mode():
            totals.append(model.log_probs(rows).double().sum(-1).numpy())
    return float(np.mean(totals[1] - totals[0]))


@pytest.fixture(scope="module")
def scored(model, fasta, records, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scored")
    vcf = _write_vcf(tmp / "in.vcf", records)
    out = tmp / "out.vcf.gz"
    summary = score_vcf(
        vcf,
        fasta,
        out,
        model,
        options=ScoreOptions(window=W, batch_size=4),
        device="cpu",
        model_name="dnahnet-tiny",
        command_line="dnahnet score-variants in.vcf",
    )
    return vcf, out, summary


def test_output_vcf_keeps_records_and_scores_every_kind(scored, records, genome, model):
    vcf, out, summary = scored
    assert Path(f"{out}.tbi").exists()
    with pysam.VariantFile(str(out)) as handle:
        header = handle.header
        assert header.info["DNAHNET_LLR"].number == "A"
        assert header.info["DNAHNET_LLR_FWD"].number == "A"
        assert any(r.key == "dnahnet_command" for r in header.records)
        rows = list(handle)
        assert len(list(handle.fetch(A, 1500, 1900))) == 3  # tabix index works
    assert [r.id for r in rows] == [r[2] for r in records]
    assert [r.info["DP"] for r in rows] == [10 + i for i in range(len(records))]
    by_id = {r.id: r for r in rows}
    for name in ("snv", "mnv", "ins", "del", "split", "edge"):
        (llr,) = by_id[name].info["DNAHNET_LLR"]
        assert np.isfinite(llr)
    assert len(by_id["multi"].info["DNAHNET_LLR"]) == 2
    assert by_id["star"].info["DNAHNET_LLR"][1] is None
    assert "SKIPPED_STAR" in by_id["star"].info["DNAHNET_FLAGS"]
    assert "DNAHNET_LLR" not in by_id["symbolic"].info
    assert by_id["symbolic"].info["DNAHNET_FLAGS"] == ("SKIPPED_SYMBOLIC",)
    assert by_id["breakend"].info["DNAHNET_FLAGS"] == ("SKIPPED_BREAKEND",)
    # an ambiguity code is no sequence to score: skipped, the record's other ALT scored
    assert by_id["ambiguous"].info["DNAHNET_LLR"][1] is None
    assert np.isfinite(by_id["ambiguous"].info["DNAHNET_LLR"][0])
    assert "SKIPPED_AMBIGUOUS" in by_id["ambiguous"].info["DNAHNET_FLAGS"]
    assert by_id["n_alt"].info["DNAHNET_FLAGS"] == ("SKIPPED_AMBIGUOUS",)
    assert "REF_MISMATCH" in by_id["mismatch"].info["DNAHNET_FLAGS"]
    assert "CLIPPED" in by_id["edge"].info["DNAHNET_FLAGS"]
    assert summary.records == len(records)
    assert summary.scored == 11 and dict(summary.skipped) == {
        "symbolic": 1,
        "star": 1,
        "breakend": 1,
        "ambiguous": 2,
    }
    assert summary.ref_mismatches == 1 and summary.clipped == 1
    # strand values average to the LLR
    fwd, rev = by_id["snv"].info["DNAHNET_LLR_FWD"][0], by_id["snv"].info["DNAHNET_LLR_REV"][0]
    assert by_id["snv"].info["DNAHNET_LLR"][0] == pytest.approx((fwd + rev) / 2, abs=2e-4)


@pytest.mark.parametrize("name", ["snv", "mnv", "ins", "del", "edge"])
def test_llr_equals_the_definition(scored, records, genome, model, name):
    _, out, _ = scored
    chrom, pos, _, ref, alt = next(r for r in records if r[2] == name)
    with pysam.VariantFile(str(out)) as handle:
        record = next(r for r in handle if r.id == name)
    expected = _direct_llr(model, genome[chrom], pos, ref, alt)
    assert record.info["DNAHNET_LLR"][0] == pytest.approx(expected, abs=3e-3)


def test_tsv_output_and_split_records_share_the_site(model, fasta, records, tmp_path, scored):
    vcf = _write_vcf(tmp_path / "in.vcf", records)
    out = tmp_path / "out.tsv"
    score_vcf(
        vcf,
        fasta,
        out,
        model,
        options=ScoreOptions(window=W, reverse_complement=False),
        device="cpu",
    )
    lines = out.read_text().splitlines()
    assert lines[0].split("\t") == ["chrom", "pos", "ref", "alt", "llr", "flags"]
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == sum(len(r[4].split(",")) for r in records)
    star = [r for r in rows if r[3] == "*"][0]
    assert star[4] == "NA" and star[5] == "SKIPPED_STAR"
    multi = [r for r in rows if r[1] == "1800"]
    assert len(multi) == 3 and len({r[4] for r in multi}) == 3


def test_bcf_input_gives_the_same_scores(scored, fasta, model, tmp_path):
    vcf, out, _ = scored
    bcf = tmp_path / "in.bcf"
    with pysam.VariantFile(str(vcf)) as src:
        src.header.info.add("END", 1, "Integer", "End of a symbolic allele")
        with pysam.VariantFile(str(bcf), "wb", header=src.header) as dst:
            for record in src:
                dst.write(record)
    out2 = tmp_path / "from_bcf.vcf"
    score_vcf(bcf, fasta, out2, model, options=ScoreOptions(window=W), device="cpu")
    with pysam.VariantFile(str(out)) as a, pysam.VariantFile(str(out2)) as b:
        for x, y in zip(a, b, strict=True):
            a_llr, b_llr = x.info.get("DNAHNET_LLR"), y.info.get("DNAHNET_LLR")
            assert (a_llr is None) == (b_llr is None)
            if a_llr is not None:
                assert [v is None for v in a_llr] == [v is None for v in b_llr]
                np.testing.assert_allclose(
                    [v for v in a_llr if v is not None], [v for v in b_llr if v is not None],
                    atol=2e-3,
                )


def test_circular_wraps_and_matches_definition(model, tmp_path):
    phage = load_genome(DEMO / "phage_vt2_sakai.fna.gz")
    seq = phage["NC_000902.1"]
    rows = [("NC_000902.1", 10, "origin", seq[9], _other(seq[9]))]
    vcf = _write_vcf(tmp_path / "in.vcf", rows)
    ref = DEMO / "phage_vt2_sakai.fna.gz"
    values = {}
    for circular in (True, False):
        out = tmp_path / f"out_{circular}.vcf"
        summary = score_vcf(
            vcf, ref, out, model, device="cpu", options=ScoreOptions(window=W, circular=circular)
        )
        with pysam.VariantFile(str(out)) as handle:
            (record,) = list(handle)
        values[circular] = record.info["DNAHNET_LLR"][0]
        flag = "WRAPPED" if circular else "CLIPPED"
        assert record.info["DNAHNET_FLAGS"] == (flag,)
        assert (summary.wrapped, summary.clipped) == ((1, 0) if circular else (0, 1))
        expected = _direct_llr(model, seq, 10, seq[9], rows[0][4], circular=circular)
        assert values[circular] == pytest.approx(expected, abs=3e-3)
    assert values[True] != pytest.approx(values[False], abs=1e-3)


def test_accession_matching_with_gi_headers(model, genome, tmp_path):
    fasta = tmp_path / "gi.fa"
    fasta.write_text(f">gi|123456|ref|{A}|\n{genome[A]}\n>gi|654321|ref|{B}|\n{genome[B]}\n")
    pos = 700
    rows = [("NZ_JNJU01000008", pos, "v1", genome[A][pos - 1], _other(genome[A][pos - 1]))]
    vcf = _write_vcf(tmp_path / "in.vcf", rows)
    out = tmp_path / "out.tsv"
    summary = score_vcf(vcf, fasta, out, model, device="cpu", options=ScoreOptions(window=W))
    assert summary.scored == 1 and summary.ref_mismatches == 0
    assert out.read_text().splitlines()[1].split("\t")[0] == "NZ_JNJU01000008"
    # nothing matches: both name sets listed, nothing written
    bad = _write_vcf(tmp_path / "bad.vcf", [("chrX", 5, "v", "A", "C")])
    with pytest.raises(DnahnetError) as info:
        score_vcf(
            bad, fasta, tmp_path / "bad.tsv", model, device="cpu", options=ScoreOptions(window=W)
        )
    assert "chrX" in str(info.value) and f"gi|123456|ref|{A}|" in str(info.value)
    assert not (tmp_path / "bad.tsv").exists()
    # --chrom-map resolves it
    rows = [("chrX", pos, "v1", genome[A][pos - 1], "T" if genome[A][pos - 1] != "T" else "A")]
    mapped = _write_vcf(tmp_path / "mapped.vcf", rows)
    summary = score_vcf(
        mapped,
        fasta,
        tmp_path / "m.tsv",
        model,
        device="cpu",
        chrom_map={"chrX": A},
        options=ScoreOptions(window=W),
    )
    assert summary.scored == 1


def test_strict_ref_mismatch_is_an_error(model, fasta, records, tmp_path):
    vcf = _write_vcf(tmp_path / "in.vcf", records)
    with pytest.raises(DnahnetError, match=r"in.vcf: line 15: REF .* does not match"):
        score_vcf(
            vcf,
            fasta,
            tmp_path / "o.vcf",
            model,
            device="cpu",
            options=ScoreOptions(window=W, strict=True),
        )
    assert not (tmp_path / "o.vcf").exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"{A}\tabc\t.\tA\tC\t.\t.\t.", r"line 7: POS 'abc' is not a positive integer"),
        (f"{A}\t100\t.\tA", r"line 7: expected at least 8 tab-separated VCF columns, found 4"),
        (f"{A}\t100\t.\tA\tC!\t.\t.\t.", r"line 7: ALT allele 'C!' is not valid"),
        (f"{A}\t100\t.\tX\tC\t.\t.\t.", r"line 7: REF 'X' is not a nucleotide sequence"),
        (f"{A}\t9999\t.\tA\tC\t.\t.\t.", r"line 7: .*beyond the end of"),
    ],
)
def test_bad_vcf_lines_name_the_line(model, fasta, genome, tmp_path, line, message):
    good = f"{A}\t10\t.\t{genome[A][9]}\t{_other(genome[A][9])}\t.\t.\t."
    vcf = tmp_path / "bad.vcf"
    vcf.write_text(HEADER + good + "\n" + line + "\n")
    with pytest.raises(DnahnetError, match=message):
        score_vcf(
            vcf, fasta, tmp_path / "o.vcf.gz", model, device="cpu", options=ScoreOptions(window=W)
        )
    assert not list(tmp_path.glob("o.vcf.gz*")) and not list(tmp_path.glob(".o.vcf.gz*"))


def test_cli_end_to_end(fasta, records, tmp_path):
    vcf = _write_vcf(tmp_path / "in.vcf", records[:2])
    out = tmp_path / "out.vcf"
    cmd = [
        sys.executable,
        "-m",
        "dnahnet_cli",
        "score-variants",
        str(vcf),
        "--reference",
        str(fasta),
        "--model",
        "dnahnet-tiny",
        "--window",
        str(W),
        "-o",
        str(out),
        "--device",
        "cpu",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "scored: 2" in done.stderr
    assert "DNAHNET_LLR=" in out.read_text()
    bad = tmp_path / "bad.vcf"
    bad.write_text(HEADER + f"{A}\t0\t.\tA\tC\t.\t.\t.\n")
    cmd[4] = str(bad)
    cmd[cmd.index(str(out))] = str(tmp_path / "bad_out.vcf")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"dnahnet: error: {bad}: line 6: POS '0' is not a positive integer"
    ]
    assert not (tmp_path / "bad_out.vcf").exists()
