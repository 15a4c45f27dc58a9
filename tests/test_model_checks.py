"""check-model: genetic codes, SNV classes on a real genome, boundary periodicity with a
model stub whose answer is known, Markov baselines, and the command end to end."""

import gzip
import json
import math
from dataclasses import dataclass
from itertools import product

import numpy as np
import pytest
import torch
from Bio.Seq import Seq
from conftest import DEMO_DATA, TEST_DATA
from torch import nn
from typer.testing import CliRunner

from dnahnet_cli.app import app
from dnahnet_core.alphabet import decode, encode
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.annotations import load_annotated_genome
from dnahnet_core.io.reports import json_ready
from dnahnet_core.tasks import genetic_code as gc
from dnahnet_core.tasks import model_checks as mc

FNA = DEMO_DATA / "mycoplasma_alvi.fna.gz"
GFF = DEMO_DATA / "mycoplasma_alvi.gff.gz"
CONTIG = "NZ_JNJU01000001.1"
runner = CliRunner()


@pytest.fixture(scope="module")
def mycoplasma():
    return load_annotated_genome(FNA, GFF)


@pytest.fixture(scope="module")
def coding(mycoplasma):
    return mc.coding_map(mycoplasma)


# ---------------------------------------------------------------- genetic codes


@pytest.mark.parametrize("code", sorted(gc.GENETIC_CODES))
def test_codon_tables_agree_with_biopython(code):
    codons = ["".join(c) for c in product("ACGT", repeat=3)]
    ours = gc.translate("".join(codons), code)
    theirs = str(Seq("".join(codons)).translate(table=code))
    assert ours == theirs
    assert gc.translate("TGA", code) == {1: "*", 4: "W", 11: "*", 25: "G"}[code]
    assert gc.translate("ATGNNN", code) == "MX"


def test_unsupported_genetic_code():
    with pytest.raises(DnahnetError, match="genetic code 2 is not supported"):
        mc.genetic_code_table(2)


# ---------------------------------------------------------------- CDSs and SNV classes


def test_coding_map_reads_the_code_from_the_annotation(coding):
    assert coding.codes == {4: 679}  # transl_table=4 on every CDS of the RefSeq GFF3
    assert coding.skipped == {"pseudogene": 7}
    assert len(coding.codon_sites) == len(coding.codon_tokens) == len(coding.codon_gene)
    # codon positions along a + gene (pdhA, 1112..2191) and a - gene (ffh, 19708..21045)
    frame = coding.frame[CONTIG]
    assert frame[0, 1111:1117].tolist() == [1, 2, 3, 1, 2, 3]
    assert frame[1, 21039:21045].tolist() == [3, 2, 1, 3, 2, 1]
    assert frame[0, 1100:1111].tolist() == [0] * 11


# hand-made SNVs (1-based position, forward-strand REF > ALT) on both strands, read off
# the sequence: pdhA (+) begins ATG TCG ATT ... and has TGA (Trp in code 4) as codon 42
# and TGG as codon 56; ffh (-) begins TTA TTA AAA ACA ATG on its own strand.
HAND_MADE = [
    (1117, "G", "A", "+", 3, "TCG", "TCA", "synonymous"),
    (1115, "T", "C", "+", 1, "TCG", "CCG", "missense"),
    (1116, "C", "A", "+", 2, "TCG", "TAG", "nonsense"),
    (1127, "A", "T", "+", 1, "AAA", "TAA", "nonsense"),
    (1240, "A", "G", "+", 3, "TGA", "TGG", "synonymous"),  # code 4: TGA is Trp
    (1282, "G", "A", "+", 3, "TGG", "TGA", "synonymous"),  # code 4: TGA is Trp, no stop
    (21039, "T", "A", "-", 1, "AAA", "TAA", "nonsense"),
    (21034, "T", "C", "-", 3, "ACA", "ACG", "synonymous"),
    (21032, "A", "G", "-", 2, "ATG", "ACG", "missense"),
]


@pytest.mark.parametrize("case", HAND_MADE, ids=lambda c: f"{c[0]}{c[1]}>{c[2]}")
def test_hand_made_snvs(coding, case):
    position, ref, alt, strand, codon_position, ref_codon, alt_codon, kind = case
    (snv,) = mc.snvs_at(coding, CONTIG, position - 1, alt)
    assert (snv.ref, snv.alt, snv.strand) == (ref, alt, strand)
    assert (snv.codon_position, snv.ref_codon, snv.alt_codon) == (codon_position, ref_codon,
                                                                  alt_codon)
    assert snv.kind == kind


def test_no_snv_outside_cds(coding):
    assert mc.snvs_at(coding, CONTIG, 1100, "A") == []  # between two genes


def test_sampled_snvs_match_biopython_translation(mycoplasma, coding):
    """Each sampled SNV applied to the genome changes Biopython's translation of its gene
    as its class says: same protein, one amino acid, or a stop."""
    snvs = mc.sample_snvs(coding, 40, seed=3)
    assert [sum(s.kind == k for s in snvs) for k in mc.CLASSES] == [40, 40, 40]
    assert len({(s.contig, s.position, s.alt) for s in snvs}) == 120
    genes = {g.label: g for g in coding.genes}
    for snv in snvs:
        gene = genes[snv.gene]
        sequence = mycoplasma.contigs[snv.contig]
        assert sequence[snv.position] == snv.ref
        mutated = sequence[: snv.position] + snv.alt + sequence[snv.position + 1 :]
        proteins = []
        for text in (sequence, mutated):
            cds = Seq(text[gene.start - 1 : gene.end])
            cds = cds if gene.strand == "+" else cds.reverse_complement()
            proteins.append(str(cds[gene.phase :].translate(table=4)))
        ref_protein, alt_protein = proteins
        changed = [i for i, (a, b) in enumerate(zip(ref_protein, alt_protein)) if a != b]
        if snv.kind == "synonymous":
            assert changed == []
        else:
            assert len(changed) == 1 and 0 < changed[0] < len(ref_protein) - 1
            assert (alt_protein[changed[0]] == "*") == (snv.kind == "nonsense")


def test_sampling_is_seeded(coding):
    assert mc.sample_snvs(coding, 5, seed=1) == mc.sample_snvs(coding, 5, seed=1)
    assert mc.sample_snvs(coding, 5, seed=1) != mc.sample_snvs(coding, 5, seed=2)


def test_more_snvs_than_the_genome_has_are_drawn_in_bounded_batches(tmp_path):
    """--snvs far beyond the genome's SNVs (1e21 asked for) returns each SNV once, quickly,
    instead of allocating 64 draws per wanted SNV."""
    fasta, gff = _write_genome(tmp_path, "ATG" + "GCT" * 20 + "TAA", [(1, 66, "+")])
    cmap = mc.coding_map(load_annotated_genome(fasta, gff))
    every = mc.sample_snvs(cmap, 10**21, seed=0)
    assert len({(s.position, s.alt) for s in every}) == len(every) == 20 * 3 * 3
    assert every == mc.sample_snvs(cmap, 10_000, seed=0)


def _write_genome(tmp_path, sequence: str, genes: list[tuple[int, int, str]], table=None):
    fasta, gff = tmp_path / "g.fna", tmp_path / "g.gff"
    fasta.write_text(f">chr\n{sequence}\n")
    extra = f";transl_table={table}" if table else ""
    lines = ["##gff-version 3"] + [
        f"chr\tmade\tCDS\t{start}\t{end}\t.\t{strand}\t0\tID=cds{i};locus_tag=g{i}{extra}"
        for i, (start, end, strand) in enumerate(genes)
    ]
    gff.write_text("\n".join(lines) + "\n")
    return fasta, gff


def test_tga_is_a_stop_in_code_11_and_tryptophan_in_code_4(tmp_path):
    # ATG GCT TGG AAA TAA: the G>A at the third base of TGG makes TGA
    fasta, gff = _write_genome(tmp_path, "CC" + "ATGGCTTGGAAATAA" + "CC", [(3, 17, "+")])
    genome = load_annotated_genome(fasta, gff)
    for code, kind, amino in ((11, "nonsense", "*"), (4, "synonymous", "W")):
        (snv,) = mc.snvs_at(mc.coding_map(genome, code), "chr", 10, "A")
        assert (snv.ref_codon, snv.alt_codon, snv.kind, snv.alt_amino_acid) == (
            "TGG", "TGA", kind, amino)
    default = mc.coding_map(genome)  # no transl_table in the GFF: code 11
    assert default.codes == {11: 1} and "default" in default.code_source


def test_wrong_genetic_code_is_an_error():
    # Prokka's GFF3 of Mycoplasma has no transl_table: under code 11 its TGA (Trp) codons
    # are stops inside most genes
    genome = load_annotated_genome(TEST_DATA / "annotated" / "mycoplasma_subset.prokka.gff.gz")
    with pytest.raises(DnahnetError, match=r"genetic code is probably wrong: give --genetic-code"):
        mc.coding_map(genome)
    assert mc.coding_map(genome, 4).codes == {4: len(mc.coding_map(genome, 4).genes)}


# ---------------------------------------------------------------- boundaries with a stub


@dataclass
class _Stage:
    boundary_prob: torch.Tensor
    boundary_mask: torch.Tensor


@dataclass
class _Output:
    logits: torch.Tensor
    stages: list


class EveryThirdBase(nn.Module):
    """Stage 1 marks every third position of its input (0, 3, 6, ...), stage 2 every
    position; uniform over A/C/G/T (2 bits per nucleotide)."""

    def forward(self, tokens, mask=None):
        batch, length = tokens.shape
        logits = torch.zeros(batch, length, 5)
        logits[..., 4] = -1e9
        third = (torch.arange(length) % 3 == 0).expand(batch, length)
        every = torch.ones(batch, length, dtype=torch.bool)
        stages = [_Stage(m.float(), m) for m in (third, every)]
        return _Output(logits, stages)


def _synthetic_genes(seed=0, codons=400):
    """Two contigs of one gene each, covering them: chr1 on +, chr2 on -."""
    rng = np.random.default_rng(seed)
    sense = [c for c in ("".join(t) for t in product("ACGT", repeat=3))
             if c not in ("TAA", "TAG", "TGA")]
    body = "".join(rng.choice(sense, codons - 2))
    gene = "ATG" + body + "TAA"
    return gene, str(Seq(gene).reverse_complement())


def test_every_third_base_stub_gives_infinite_periodicity(tmp_path):
    plus, minus = _synthetic_genes()
    length = len(plus)  # 1,200 nt: windows of 300 tile it at multiples of 3
    fasta, gff = tmp_path / "g.fna", tmp_path / "g.gff"
    fasta.write_text(f">chr1\n{plus}\n>chr2\n{minus}\n")
    gff.write_text(
        "##gff-version 3\n"
        f"chr1\tmade\tCDS\t1\t{length}\t.\t+\t0\tID=a\n"
        f"chr2\tmade\tCDS\t1\t{length}\t.\t-\t0\tID=b\n"
    )
    options = mc.CheckOptions(max_bases=2 * length, sample_window=300, snvs_per_class=0,
                              bootstrap=50)
    report = mc.check_model(EveryThirdBase(), fasta, gff, options, device="cpu")
    assert report["sample"]["windows"] == 8
    stage1, stage2 = report["boundaries"]
    # each gene is read on its own strand: stage 1 always at codon position 1
    assert stage1["rate_by_codon_position"] == [1.0, 0.0, 0.0]
    assert stage1["periodicity"] == math.inf
    assert stage1["periodicity_ci95"] == [math.inf, math.inf]
    # a window's first base is not counted: 99 of the 299 others are at codon position 1
    assert stage1["baseline"] == {"rate_by_codon_position": [pytest.approx(99 / 299)] * 3,
                                  "periodicity": 1.0}
    assert stage2["rate_by_codon_position"] == [1.0, 1.0, 1.0]
    assert stage2["periodicity"] == 1.0
    # 2 bits per nucleotide exactly (uniform stub); the Markov baselines learn the genes
    bits = report["bits_per_nucleotide"]
    assert bits["model"] == pytest.approx(2.0)
    assert bits["nucleotides"] == 2 * 2 * length
    assert bits["markov_order_0"] < 2.01 and bits["markov_order_5"] < bits["markov_order_0"]
    text = json.dumps(json_ready(report))
    assert '"periodicity": "inf"' in text and "Infinity" not in text
    assert "periodicity (max/min) inf" in mc.format_report(report)


def test_periodicity_rule():
    assert mc.periodicity([0.2, 0.2, 0.2]) == 1.0
    assert mc.periodicity([0.2, 0.1, 0.4]) == pytest.approx(4.0)
    assert mc.periodicity([0.5, 0.0, 0.1]) == math.inf
    assert mc.periodicity([0.0, 0.0, 0.0]) is None
    assert mc.periodicity([float("nan"), 0.1, 0.1]) is None


# ---------------------------------------------------------------- SNV metrics, Markov


def _snv(kind, codon_position):
    return mc.CodingSnv("c", 0, "A", "C", "g", "+", codon_position, "", "", "", "", kind)


def test_snv_report_known_answers():
    snvs = [_snv(k, p) for k in mc.CLASSES for p in (1, 2, 3) for _ in range(12)]
    kinds = np.array([s.kind for s in snvs])
    llr = np.select([kinds == "nonsense", kinds == "missense"], [-5.0, -1.0], 0.0)
    report = mc.snv_report(snvs, llr, np.zeros(len(snvs)), bootstrap=20)
    for name in ("nonsense_vs_synonymous", "missense_vs_synonymous"):
        assert report["auroc"][name]["auroc"] == 1.0
        assert report["auroc"][name]["ci95"] == [1.0, 1.0]
        assert report["auroc"][name]["markov_auroc"] == 0.5  # all ties
        assert report["auroc_by_codon_position"]["3"][name]["auroc"] == 1.0
    assert report["classes"]["nonsense"]["mean_llr"] == -5.0
    assert report["classes"]["missense"]["by_codon_position"]["2"] == {
        "n": 12, "mean_llr": -1.0, "markov_mean_llr": 0.0}
    few = mc.snv_report(snvs[:40], llr[:40], np.zeros(40), bootstrap=0)
    assert few["auroc_by_codon_position"]["1"]["missense_vs_synonymous"] is None


def test_markov_model_known_answers():
    periodic = encode("ACGT" * 500)
    order0 = mc.MarkovModel(0).fit([periodic])
    assert -np.log2(np.exp(order0.log_probs(periodic))).mean() == pytest.approx(2.0)
    order3 = mc.MarkovModel(3).fit([periodic])
    bits = -order3.log_probs(periodic) / np.log(2)
    assert bits[3:].max() < 0.01  # the next base is known from the previous three
    with_n = encode("ACGTNACGT")
    values = order3.log_probs(with_n)
    assert np.isnan(values[4]) and values[5] == pytest.approx(order0.log_probs(with_n)[5])


def test_markov_snv_llr_is_the_whole_sequence_difference(coding):
    model = mc.MarkovModel(5).fit([coding.tokens[CONTIG][:50_000]])
    snvs = mc.sample_snvs(coding, 3, seed=0)[:4]
    local = mc.markov_snv_llr(model, coding, snvs, reverse_complement=False)
    for snv, value in zip(snvs, local):
        ref = coding.tokens[snv.contig]
        alt = ref.copy()
        alt[snv.position] = encode(snv.alt)[0]
        full = np.nansum(model.log_probs(alt)) - np.nansum(model.log_probs(ref))
        assert value == pytest.approx(full, abs=1e-6)


# ---------------------------------------------------------------- the command


def test_check_model_command_end_to_end(tmp_path):
    out = tmp_path / "report.json"
    args = ["check-model", "--model", "dnahnet-tiny", "--genome", str(FNA), "--annotation",
            str(GFF), "--max-bases", "8192", "--sample-window", "4096", "--snvs", "6",
            "--window", "256", "--device", "cpu", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["genetic_code"]["cds_per_code"] == {"4": 679}
    assert report["sample"]["bases"] == 8192 and len(report["boundaries"]) == 2
    assert report["bits_per_nucleotide"]["uniform"] == 2.0
    assert [report["snvs"]["classes"][k]["n"] for k in mc.CLASSES] == [6, 6, 6]
    assert report["snvs"]["window"] == 256 and len(report["snvs"]["records"]) == 18
    assert set(report["snvs"]["auroc"]) == {"nonsense_vs_synonymous", "missense_vs_synonymous"}
    for stage in report["boundaries"]:
        rates = stage["rate_by_codon_position"]
        assert stage["periodicity"] == pytest.approx(max(rates) / min(rates))
        # the model is the untrained preset (seed 0): its own untrained baseline, exactly
        untrained = stage["baseline"]["untrained"]
        assert untrained["rate_by_codon_position"] == rates
        assert untrained["periodicity"] == stage["periodicity"]
    assert "stage 1 boundary rate in CDS" in result.output
    assert "baseline the same architecture untrained (seed 0): periodicity" in result.output
    quick = runner.invoke(app, [*args[:-2], "--no-untrained-baseline", "--snvs", "0"])
    assert quick.exit_code == 0 and "untrained" not in quick.output
    assert "nonsense vs syn (all)" in result.output


def test_check_model_user_errors(tmp_path):
    base = ["check-model", "--model", "dnahnet-tiny", "--device", "cpu"]
    cases = [
        (["--genome", str(FNA), "--annotation", str(GFF), "--snvs", "-1"], 2,
         "'--snvs': -1: must be >= 0"),
        (["--genome", str(FNA)], 1, "FASTA has no annotation"),
        (["--genome", str(FNA), "--annotation", str(GFF), "--genetic-code", "2"], 2,
         "'--genetic-code': 2: not a supported code"),
        (["--genome", str(TEST_DATA / "annotated" / "mycoplasma_subset.prokka.gff.gz")], 1,
         "give --genetic-code"),
    ]
    for extra, code, message in cases:
        result = _run_cli(base + extra)
        assert result.returncode == code, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("dnahnet: error: ")
        assert message in result.stderr


def _run_cli(args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "dnahnet_cli", *args], capture_output=True,
                          text=True, check=False)


def test_bundled_genome_text_is_what_the_hand_made_cases_read():
    with gzip.open(FNA, "rt") as handle:
        next(handle)
        text = "".join(line.strip() for line in handle if not line.startswith(">"))
    assert text[1111:1123] == "ATGTCGATTCTT"  # pdhA
    assert decode(encode(text[21030:21045])) == "CATTGTTTTTAATAA"  # ffh, reverse strand
