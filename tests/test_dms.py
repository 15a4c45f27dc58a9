"""score-dms on real Mycoplasma genes (one per strand): HGVS parsing, codon mapping, scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnahnet_core.alphabet import reverse_complement
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.fasta import load_genome
from dnahnet_core.model import build_model, load_config
from dnahnet_core.tasks.dms import (
    CODON_TABLES,
    Cds,
    DmsAssay,
    _Skip,
    parse_cds,
    parse_nt,
    parse_pro,
    score_dms,
)
from dnahnet_core.tasks.variants import ScoreOptions, score_vcf

DEMO = Path(__file__).resolve().parent.parent / "dnahnet_core" / "demo_data"
CONTIG = "NZ_JNJU01000007.1"
FLANK = 300
W = 256
# RefSeq CDS of the bundled GFF: (start, end, strand), 1-based closed on CONTIG
GENES = {"+": (33531, 34013), "-": (40946, 41179)}


@pytest.fixture(scope="module")
def model():
    return build_model(load_config("dnahnet-tiny"), seed=0).eval()


@pytest.fixture(scope="module", params=["+", "-"])
def gene(request, tmp_path_factory):
    strand = request.param
    start, end = GENES[strand]
    context = load_genome(DEMO / "mycoplasma_alvi.fna.gz")[CONTIG][start - 1 - FLANK : end + FLANK]
    path = tmp_path_factory.mktemp(f"dms{'plus' if strand == '+' else 'minus'}") / "context.fa"
    path.write_text(f">{CONTIG}:{start - FLANK}-{end + FLANK}\n{context}\n")
    cds_text = f"{FLANK + 1}-{FLANK + end - start + 1}:{strand}"
    return path, context, cds_text, parse_cds(cds_text, len(context))


def _coding(context: str, cds: Cds) -> str:
    seq = context[cds.start : cds.end]
    return seq if cds.strand == "+" else reverse_complement(seq)


def test_cds_coordinates_read_a_real_gene(gene):
    _, context, _, cds = gene
    coding = _coding(context, cds)
    assert coding[:3] in ("ATG", "GTG", "TTG") and coding[-3:] in ("TAA", "TAG", "TGA")
    protein = "".join(CODON_TABLES[4][coding[i : i + 3]] for i in range(0, len(coding), 3))
    assert "*" not in protein[:-1]  # Mycoplasma: TGA is Trp (table 4)
    # c.1 is the first base of the start codon on the CDS strand
    ((pos, base),) = parse_nt(f"c.1{coding[0]}>C", context, cds)
    assert pos == (cds.start if cds.strand == "+" else cds.end - 1)
    assert base == ("C" if cds.strand == "+" else "G")


def test_parse_cds_errors():
    with pytest.raises(DnahnetError, match="START-END"):
        parse_cds("10..20", 100)
    with pytest.raises(DnahnetError, match="multiple of 3"):
        parse_cds("10-20:+", 100)
    with pytest.raises(DnahnetError, match="context length"):
        parse_cds("10-201", 100)


def test_protein_change_maps_to_nearest_codons(gene):
    _, context, _, cds = gene
    coding = _coding(context, cds)
    codon = coding[3:6]  # codon 2
    aa = CODON_TABLES[11][codon]
    three = {v: k for k, v in {"Ala": "A", "Arg": "R", "Asn": "N", "Asp": "D", "Cys": "C",
             "Gln": "Q", "Glu": "E", "Gly": "G", "His": "H", "Ile": "I", "Leu": "L",
             "Lys": "K", "Met": "M", "Phe": "F", "Pro": "P", "Ser": "S", "Thr": "T",
             "Trp": "W", "Tyr": "Y", "Val": "V"}.items()}  # fmt: skip
    target = "W" if aa != "W" else "C"
    alternatives = parse_pro(f"p.{three[aa]}2{three[target]}", context, cds)
    # the same change in one-letter code
    assert alternatives == parse_pro(f"p.{aa}2{target}", context, cds)
    best = min(
        sum(a != b for a, b in zip(c, codon, strict=True))
        for c, x in CODON_TABLES[11].items()
        if x == target
    )
    assert alternatives and all(len(alt) == best for alt in alternatives)
    for alt in alternatives:  # every alternative codon encodes the target amino acid
        mutated = list(context)
        for pos, base in alt:
            mutated[pos] = base
        assert CODON_TABLES[11][_coding("".join(mutated), cds)[3:6]] == target
    # Met -> Leu from ATG: CTG and TTG tie at one change
    if codon == "ATG":
        assert len(alternatives) == 2
    with pytest.raises(_Skip, match="reference amino acid mismatch"):
        parse_pro(f"p.{'Trp' if aa != 'W' else 'Cys'}2Ala", context, cds)
    with pytest.raises(_Skip, match="multiple"):
        parse_pro("p.[Ala2Gly;Val3Leu]", context, cds)


def test_score_dms_nt_and_correlations(gene, model, tmp_path):
    path, context, cds_text, cds = gene
    coding = _coding(context, cds)
    rows = []
    rng = np.random.default_rng(1)
    for c_pos in range(4, 40, 3):
        ref = coding[c_pos - 1]
        rows.append((f"c.{c_pos}{ref}>{'ACGT'[('ACGT'.index(ref) + 1) % 4]}", rng.normal()))
    rows += [
        (f"c.[10{coding[9]}>A;12{coding[11]}>A]", 0.5),
        (f"c.13_15delins{'TTT'}", 0.1),
        (f"c.1{'T' if coding[0] != 'T' else 'G'}>C", 0.0),  # wrong reference base
        ("c.12+1G>A", 0.0),
        ("c.12del", 0.0),
        ("_wt", 0.0),
    ]
    csv = tmp_path / "scores.csv"
    table = pd.DataFrame(
        {
            "accession": [f"urn:mavedb:1-a-1#{i}" for i in range(len(rows))],
            "hgvs_nt": [r[0] for r in rows],
            "hgvs_pro": "NA",
            "score": [r[1] for r in rows],
        }
    )
    csv.write_text("# MaveDB-style score set\n" + table.to_csv(index=False))
    out = tmp_path / "out.tsv"
    summary = score_dms(DmsAssay(csv, path, cds_text), out, model, window=W, device="cpu",
                        batch_size=4)
    result = pd.read_csv(out, sep="\t")
    assert len(result) == len(rows) and summary.variants == len(rows)
    assert summary.scored == 14
    assert dict(summary.skipped) == {
        "reference base mismatch": 1,
        "unsupported HGVS nucleotide change": 2,
        "no change": 1,
    }
    assert result["line"].tolist()[:2] == [3, 4]  # comment + header lines come first
    scored = result[result["status"] == "ok"]
    expected = scored[["llr", "score"]].corr(method="spearman").iloc[0, 1]
    assert summary.spearman == pytest.approx(expected, abs=1e-3)
    assert summary.pearson == pytest.approx(
        np.corrcoef(scored["llr"], scored["score"])[0, 1], abs=1e-3
    )
    # the first SNV scores as score-variants scores the same change on the context
    hgvs = rows[0][0]
    ((pos, base),) = parse_nt(hgvs, context, cds)
    vcf = tmp_path / "one.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        f"{path.read_text().split()[0][1:]}\t{pos + 1}\t.\t{context[pos]}\t{base}"
        "\t.\t.\t.\n"
    )
    score_vcf(vcf, path, tmp_path / "one.tsv", model, options=ScoreOptions(window=W), device="cpu")
    llr = float((tmp_path / "one.tsv").read_text().splitlines()[1].split("\t")[4])
    assert scored["llr"].iloc[0] == pytest.approx(llr, abs=2e-3)


def test_score_dms_protein_set(gene, model, tmp_path):
    path, context, cds_text, cds = gene
    coding = _coding(context, cds)
    one = {v: k for k, v in {"A": "Ala", "W": "Trp"}.items()}
    rows = []
    for codon in range(2, 12):
        aa = CODON_TABLES[11][coding[3 * codon - 3 : 3 * codon]]
        if aa in "*W":
            continue
        rows.append(f"p.{aa}{codon}W")
    rows += ["p.=", "p.[Ala2Gly;Val3Leu]", f"p.{one['Ala']}2Gly" if coding[3:6] != "GCA" else "x"]
    csv = tmp_path / "pro.csv"
    pd.DataFrame({"hgvs_nt": "NA", "hgvs_pro": rows, "score": np.arange(len(rows))}).to_csv(
        csv, index=False
    )
    out = tmp_path / "pro.tsv"
    summary = score_dms(
        DmsAssay(csv, path, cds_text), out, model, window=W, device="cpu",
        reverse_complement=False,
    )
    result = pd.read_csv(out, sep="\t")
    assert summary.scored == len(rows) - 3
    assert (result["codons"][result["status"] == "ok"] >= 1).all()
    assert np.isfinite(result["llr"][result["status"] == "ok"]).all()
    assert summary.skipped["multiple amino-acid changes"] == 1


def test_missing_columns_are_an_error(gene, model, tmp_path):
    path, _, cds_text, _ = gene
    csv = tmp_path / "bad.csv"
    csv.write_text("hgvs_nt,value\nc.1A>G,1\n")
    with pytest.raises(DnahnetError, match="no 'score' column"):
        score_dms(DmsAssay(csv, path, cds_text), tmp_path / "o.tsv", model, window=W,
                  device="cpu")
    assert not (tmp_path / "o.tsv").exists()
