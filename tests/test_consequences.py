"""Variant consequences (score-variants --annotation): genetic codes against Biopython, and
hand-made SNVs/indels of every class on both strands of the two bundled annotated genomes
(Mycoplasma alvi, genetic code 4; phage VT2-Sakai, code 11), each checked against an
independent classification of the whole mutated CDS translated by Biopython."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from itertools import product

import pytest
from Bio.Data.CodonTable import unambiguous_dna_by_id
from Bio.Seq import Seq
from conftest import DEMO_DATA, TEST_DATA

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.annotations import load_annotated_genome
from dnahnet_core.tasks import genetic_code as gc
from dnahnet_core.tasks import model_checks as mc
from dnahnet_core.tasks.consequences import CONSEQUENCES, ConsequenceAnnotator

GENOMES = {
    "mycoplasma": ("mycoplasma_alvi.fna.gz", "mycoplasma_alvi.gff.gz", 4),
    "phage": ("phage_vt2_sakai.fna.gz", "phage_vt2_sakai.gff.gz", 11),
}


@pytest.fixture(scope="module", params=sorted(GENOMES))
def annotated(request):
    fna, gff, code = GENOMES[request.param]
    genome = load_annotated_genome(DEMO_DATA / fna, DEMO_DATA / gff)
    return genome, ConsequenceAnnotator(genome), code


# ---------------------------------------------------------------- genetic codes


@pytest.mark.parametrize("code", sorted(gc.GENETIC_CODES))
def test_codon_tables_and_start_codons_agree_with_biopython(code):
    theirs = unambiguous_dna_by_id[code]
    table = gc.codon_table(code)
    assert {c: a for c, a in table.items() if a != "*"} == theirs.forward_table
    assert sorted(c for c, a in table.items() if a == "*") == sorted(theirs.stop_codons)
    assert gc.START_CODONS[code] == set(theirs.start_codons)
    codons = "".join("".join(c) for c in product("ACGT", repeat=3))
    assert gc.translate(codons, code) == str(Seq(codons).translate(table=code))


def test_unsupported_code_is_a_user_error():
    with pytest.raises(DnahnetError, match="--genetic-code 2 is not supported"):
        gc.feature_codes([], 2)


# ---------------------------------------------------------------- independent classification


def _transcript(sequence: str, feature) -> str:
    """The CDS on its own strand, from the feature's coordinates (single part)."""
    dna = Seq(sequence[feature.start - 1 : feature.end])
    return str(dna if feature.strand == "+" else dna.reverse_complement())


def _expected(sequence, feature, code, pos, ref, alt):
    """Class of a VCF allele inside ``feature`` from the whole mutated CDS, translated by
    Biopython (no codon arithmetic shared with the code under test)."""
    start = pos - 1
    assert sequence[start : start + len(ref)] == ref
    mutated = sequence[:start] + alt + sequence[start + len(ref) :]
    delta = len(alt) - len(ref)
    shifted = type(feature)(feature.contig, feature.start, feature.end + delta, feature.strand,
                            "CDS")
    before, after = _transcript(sequence, feature), _transcript(mutated, shifted)
    if delta % 3:
        return "frameshift"
    protein = str(Seq(before).translate(table=code))
    changed = str(Seq(after).translate(table=code))
    assert "*" not in protein[:-1] and protein.endswith("*")
    if "*" in changed[:-1]:  # the CDS's end moved with the change: its own stop stays last
        return "stop_gained"
    if not changed.endswith("*"):
        return "stop_lost"
    if after[:3] not in unambiguous_dna_by_id[code].start_codons:
        return "start_lost"
    if delta:
        return "inframe_indel"
    return "synonymous" if changed[1:] == protein[1:] else "missense"


def _gene(genome, annotator, strand, *, codon=""):
    """The first complete, single-part CDS on ``strand`` that no other gene overlaps (with
    ``codon``: one that holds it in frame, after the start codon)."""
    found = []
    for gene in annotator.genes:
        f = gene.feature
        if not (gene.coding and f.strand == strand and not f.partial and len(f.segments) == 1):
            continue
        others = [g.feature for g in annotator.genes if g.feature.contig == f.contig
                  and g.feature is not f and g.feature.label != f.label
                  and g.feature.start <= f.end + 60 and g.feature.end >= f.start - 60]
        if not others and f.end - f.start > 300:
            found.append(f)
    return next(f for f in found if not codon or codon in _codons(genome, f)[1:])


def _codons(genome, feature) -> list[str]:
    transcript = _transcript(genome.contigs[feature.contig], feature)
    return [transcript[i : i + 3] for i in range(0, len(transcript), 3)]


def _other(base: str) -> str:
    return "A" if base != "A" else "C"


def _snv(sequence, feature, codon, offset, wanted, code):
    """An SNV (pos, ref, alt) at ``offset`` of codon ``codon`` (0-based, on the gene's
    strand) whose class (by Biopython) is ``wanted``, or None."""
    transcript_index = 3 * codon + offset
    if feature.strand == "+":
        p = feature.start - 1 + transcript_index
    else:
        p = feature.end - 1 - transcript_index
    for alt in "ACGT":
        if alt != sequence[p] and _expected(sequence, feature, code, p + 1, sequence[p],
                                            alt) == wanted:
            return p + 1, sequence[p], alt
    return None


def _variants_of_every_class(genome, annotator, feature, code):
    """Hand-made alleles of each coding class in ``feature`` (VCF style, anchor bases)."""
    seq = genome.contigs[feature.contig]
    codons = (feature.end - feature.start + 1) // 3
    out = {}
    for wanted in ("synonymous", "missense", "stop_gained"):
        out[wanted] = next(v for k in range(2, codons - 1) for o in (2, 0, 1)
                           if (v := _snv(seq, feature, k, o, wanted, code)))
    out["stop_lost"] = next(v for o in (0, 1, 2)
                            if (v := _snv(seq, feature, codons - 1, o, "stop_lost", code)))
    out["start_lost"] = next(v for o in (1, 2, 0)
                             if (v := _snv(seq, feature, 0, o, "start_lost", code)))
    # indels at the boundary of codons 5 and 6 (forward position q: the first base after
    # it), written with the anchor base before them on the forward strand
    plus = feature.strand == "+"
    q = feature.start - 1 + 15 if plus else feature.end - 15
    gone = (q, q + 3) if plus else (q - 3, q)  # codon 6 on the forward strand
    out["inframe_indel"] = (gone[0], seq[gone[0] - 1 : gone[1]], seq[gone[0] - 1])
    out["inframe_insertion"] = (q, seq[q - 1], seq[q - 1] + ("GCT" if plus else "AGC"))
    out["frameshift"] = (q + 1, seq[q : q + 2], seq[q])  # one base deleted inside a codon
    out["frameshift_insertion"] = (q + 1, seq[q], seq[q] + "G")
    return out


@pytest.mark.parametrize("strand", ["+", "-"])
def test_hand_made_variants_of_every_coding_class(annotated, strand):
    genome, annotator, code = annotated
    feature = _gene(genome, annotator, strand)
    assert feature.transl_table == code  # the annotation's table is the one used
    seq = genome.contigs[feature.contig]
    seen = set()
    for name, (pos, ref, alt) in _variants_of_every_class(genome, annotator, feature,
                                                           code).items():
        expected = _expected(seq, feature, code, pos, ref, alt)
        if name in CONSEQUENCES:
            assert expected == name  # the hand-made variant is of the class it is named for
        (got,) = annotator.annotate(feature.contig, pos, ref, [alt])
        assert (got.kind, got.gene) == (expected, feature.label), (name, pos, ref, alt)
        seen.add(got.kind)
    assert seen == {"synonymous", "missense", "stop_gained", "stop_lost", "start_lost",
                    "frameshift", "inframe_indel"}


def test_protein_change_of_an_snv(annotated):
    genome, annotator, code = annotated
    feature = _gene(genome, annotator, "-")
    seq = genome.contigs[feature.contig]
    pos, ref, alt = _snv(seq, feature, 9, 1, "missense", code)
    (got,) = annotator.annotate(feature.contig, pos, ref, [alt])
    protein = str(Seq(_transcript(seq, feature)).translate(table=code))
    mutated = seq[: pos - 1] + alt + seq[pos:]
    changed = str(Seq(_transcript(mutated, feature)).translate(table=code))
    assert got.protein == f"{protein[9]}10{changed[9]}" and protein[9] != changed[9]


def test_multi_allelic_record_and_a_start_codon_that_stays_a_start(annotated):
    genome, annotator, code = annotated
    feature = next(f for f in genome.features_of("CDS") if f.strand == "+" and not f.partial
                   and _codons(genome, f)[0] == "ATG")
    p = feature.start - 1
    alts = ["G", "C", None]  # GTG is a start codon of codes 4 and 11; CTG of both too
    got = annotator.annotate(feature.contig, p + 1, "A", alts)
    assert [c.kind for c in got[:2]] == ["synonymous", "synonymous"] and got[2] is None
    assert got[0].protein == "M1M"
    (lost,) = annotator.annotate(feature.contig, p + 2, "T", ["C"])  # ACG: no start codon
    assert lost.kind == "start_lost"


def test_outside_coding_sequences(annotated):
    genome, annotator, code = annotated
    plus, minus = _gene(genome, annotator, "+"), _gene(genome, annotator, "-")
    seq = genome.contigs[plus.contig]
    # 50 nt before the start codon of a + gene, and of a - gene (its right end)
    up = plus.start - 51
    (got,) = annotator.annotate(plus.contig, up + 1, seq[up], [_other(seq[up])])
    assert (got.kind, got.gene) == ("upstream", plus.label)
    mseq = genome.contigs[minus.contig]
    up = minus.end - 1 + 50
    (got,) = annotator.annotate(minus.contig, up + 1, mseq[up], [_other(mseq[up])])
    assert (got.kind, got.gene) == ("upstream", minus.label)
    # the same distance downstream of a gene's end is not upstream of it
    down = plus.end - 1 + 50
    (got,) = annotator.annotate(plus.contig, down + 1, seq[down], [_other(seq[down])])
    assert got.gene != plus.label
    # an insertion right before the start codon lies outside the CDS: upstream
    p = plus.start - 1
    (got,) = annotator.annotate(plus.contig, p, seq[p - 1], [seq[p - 1] + "T"])
    assert (got.kind, got.gene) == ("upstream", plus.label)
    # a deletion from upstream into the start codon loses the start
    (got,) = annotator.annotate(plus.contig, p - 3, seq[p - 4 : p + 2], [seq[p - 4]])
    assert (got.kind, got.gene) == ("start_lost", plus.label)
    # --upstream 0: no upstream class
    bare = ConsequenceAnnotator(genome, upstream=0)
    up = plus.start - 51
    (got,) = bare.annotate(plus.contig, up + 1, seq[up], [_other(seq[up])])
    assert got.kind == "intergenic" and got.gene == ""


def test_rna_genes_and_intergenic_bases(annotated):
    genome, annotator, _ = annotated
    trna = next(f for f in genome.features_of("tRNA"))
    seq = genome.contigs[trna.contig]
    p = trna.start + 10
    (got,) = annotator.annotate(trna.contig, p, seq[p - 1], [_other(seq[p - 1])])
    assert (got.kind, got.gene) == ("noncoding", trna.label)
    # a base farther than 200 nt upstream of every gene and inside none
    covered = set()
    for gene in annotator.genes:
        f = gene.feature
        if f.contig == trna.contig:
            covered.update(range(f.start - 1 - 200, f.end + 200))
    free = next(p for p in range(len(seq)) if p not in covered)
    (got,) = annotator.annotate(trna.contig, free + 1, seq[free], [_other(seq[free])])
    assert got.kind == "intergenic"


def test_pseudogenes_are_noncoding():
    genome = load_annotated_genome(DEMO_DATA / "mycoplasma_alvi.fna.gz",
                                   DEMO_DATA / "mycoplasma_alvi.gff.gz")
    annotator = ConsequenceAnnotator(genome)
    pseudo = next(f for f in genome.features_of("CDS") if f.pseudo)
    seq = genome.contigs[pseudo.contig]
    p = (pseudo.start + pseudo.end) // 2
    (got,) = annotator.annotate(pseudo.contig, p, seq[p - 1], [_other(seq[p - 1])])
    assert got.kind == "noncoding" and got.gene == pseudo.label


def test_agrees_with_check_model_snv_classes():
    """check-model's own SNV classes (a separate, vectorised classifier) on the same genome."""
    genome = load_annotated_genome(DEMO_DATA / "mycoplasma_alvi.fna.gz",
                                   DEMO_DATA / "mycoplasma_alvi.gff.gz")
    annotator = ConsequenceAnnotator(genome)
    snvs = mc.sample_snvs(mc.coding_map(genome), 40, seed=5)
    names = {"synonymous": "synonymous", "missense": "missense", "nonsense": "stop_gained"}
    for snv in snvs:
        (got,) = annotator.annotate(snv.contig, snv.position + 1, snv.ref, [snv.alt])
        assert got.kind == names[snv.kind], snv
        assert got.protein[0] == snv.ref_amino_acid and got.protein[-1] == snv.alt_amino_acid


def test_genetic_code_override_changes_tga():
    """TGA reads Trp under the annotation's code 4; --genetic-code 11 makes it a stop."""
    genome = load_annotated_genome(DEMO_DATA / "mycoplasma_alvi.fna.gz",
                                   DEMO_DATA / "mycoplasma_alvi.gff.gz")
    own, forced = ConsequenceAnnotator(genome), ConsequenceAnnotator(genome, genetic_code=11)
    feature = _gene(genome, own, "+", codon="TGG")
    seq = genome.contigs[feature.contig]
    # an SNV that makes TGG (Trp) into TGA
    p = feature.start - 1 + 3 * _codons(genome, feature).index("TGG", 1)
    assert seq[p : p + 3] == "TGG"
    (kind4,) = own.annotate(feature.contig, p + 3, "G", ["A"])
    (kind11,) = forced.annotate(feature.contig, p + 3, "G", ["A"])
    assert (kind4.kind, kind11.kind) == ("synonymous", "stop_gained")


# ---------------------------------------------------------------- the three annotation forms


def test_genbank_and_gff3_give_the_same_consequences():
    """The test subset of the Mycoplasma genome as FASTA + GFF3, Prokka GFF3 (##FASTA) and
    GenBank: one SNV every 37 nt and an insertion and a deletion every 211 nt."""
    annotated = TEST_DATA / "annotated"
    fasta = annotated / "mycoplasma_subset.fna.gz"
    forms = [load_annotated_genome(fasta, annotated / "mycoplasma_subset.gff.gz"),
             load_annotated_genome(annotated / "mycoplasma_subset.prokka.gff.gz"),
             load_annotated_genome(fasta, annotated / "mycoplasma_subset.gbk.gz")]
    # Prokka writes no transl_table: its genetic code is given, as --genetic-code 4 would
    annotators = [ConsequenceAnnotator(g, genetic_code=4 if i == 1 else None)
                  for i, g in enumerate(forms)]
    assert [a.code_source for a in annotators] == [
        "annotation (transl_table)", "--genetic-code 4", "annotation (transl_table)"]
    genome = forms[0]
    results, kinds = [], set()
    for contig, seq in genome.contigs.items():
        for p in range(1, len(seq) - 3, 37):
            alt = "ACGT"[("ACGT".index(seq[p]) + 1) % 4] if seq[p] in "ACGT" else "A"
            results.append([a.consequence(contig, p, seq[p], alt) for a in annotators])
        for p in range(5, len(seq) - 3, 211):
            for ref, alt in ((seq[p], seq[p] + "A"), (seq[p : p + 4], seq[p])):
                results.append([a.consequence(contig, p, ref, alt) for a in annotators])
    for gff, prokka, gbk in results:
        assert gff == prokka == gbk
        kinds.add(gff.kind)
    assert {"synonymous", "missense", "stop_gained", "frameshift", "inframe_indel",
            "upstream", "intergenic", "noncoding"} <= kinds


# ---------------------------------------------------------------- the command


def _info(line: str) -> dict[str, str]:
    fields = line.split("\t")[7].split(";")
    return dict(item.split("=", 1) for item in fields if "=" in item)


def test_cli_writes_declared_info_fields_and_the_summary(tmp_path):
    fasta = DEMO_DATA / "mycoplasma_alvi.fna.gz"
    gff = DEMO_DATA / "mycoplasma_alvi.gff.gz"
    genome = load_annotated_genome(fasta, gff)
    annotator = ConsequenceAnnotator(genome)
    feature = _gene(genome, annotator, "-")
    variants = _variants_of_every_class(genome, annotator, feature, 4)
    demo = (DEMO_DATA / "demo_variants.vcf").read_text().splitlines()
    header = [line for line in demo if line.startswith("#")]
    records = [line for line in demo if not line.startswith("#")]
    # a multi-allelic record: synonymous and missense at one codon, plus a symbolic ALT
    pos, ref, syn = variants["synonymous"]
    others = [b for b in "ACGT" if b not in (ref, syn)]
    records.append(f"{feature.contig}\t{pos}\tmulti\t{ref}\t{syn},{others[0]},<DEL>\t.\t.\t.")
    for name in ("stop_gained", "frameshift"):
        p, r, a = variants[name]
        records.append(f"{feature.contig}\t{p}\t{name}\t{r}\t{a}\t.\t.\t.")
    vcf = tmp_path / "in.vcf"
    vcf.write_text("\n".join(header[:-1] + [header[-1]] + records) + "\n")
    out = tmp_path / "out.vcf"
    base = [sys.executable, "-m", "dnahnet_cli", "score-variants", str(vcf), "-r", str(fasta),
            "--model", "dnahnet-tiny", "--window", "32", "--device", "cpu",
            "--annotation", str(gff)]
    done = subprocess.run(base + ["-o", str(out)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    declared = {line.split(",")[0].split("ID=")[1]: line for line in lines
                if line.startswith("##INFO=<ID=DNAHNET_")}
    for key in ("GENE", "CSQ", "AA"):
        assert "Number=A,Type=String" in declared[f"DNAHNET_{key}"]
    assert "genetic code: annotation (transl_table)" in declared["DNAHNET_CSQ"]
    data = [line for line in lines if not line.startswith("#")]
    assert len(data) == len(records)
    for line in data:
        fields = line.split("\t")
        alts = fields[4].split(",")
        info = _info(line)
        expected = annotator.annotate(fields[0], int(fields[1]), fields[3],
                                      [None if a.startswith("<") else a for a in alts])
        assert info["DNAHNET_CSQ"].split(",") == [c.kind if c else "." for c in expected]
        assert info["DNAHNET_GENE"].split(",") == [c.gene or "." if c else "." for c in expected]
        assert len(info["DNAHNET_AA"].split(",")) == len(alts)
        assert info["KIND" if fields[2].startswith("demo") else "DNAHNET_LLR"]
    multi = _info(next(line for line in data if "\tmulti\t" in line))
    assert multi["DNAHNET_CSQ"] == "synonymous,missense,."
    assert multi["DNAHNET_GENE"] == f"{feature.label},{feature.label},."
    assert multi["DNAHNET_LLR"].endswith(",.")
    # the summary: mean and median LLR per class, and the stop_gained vs synonymous AUROC
    summary = done.stderr
    assert "consequence        n   mean LLR  median LLR" in summary
    assert re.search(r"\nstop_gained\s+3\s+-?\d+\.\d{4}\s+-?\d+\.\d{4}\n", summary)
    assert re.search(r"AUROC of -LLR, stop_gained vs synonymous: \d\.\d{3} \(3 stop_gained, "
                     r"2 synonymous: too few for an interval, at least 5 of each\); chance 0.5",
                     summary), summary
    # TSV: one row per ALT with the three columns
    tsv = tmp_path / "out.tsv"
    done = subprocess.run(base + ["-o", str(tsv), "--no-reverse-complement"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    assert rows[0] == ["chrom", "pos", "ref", "alt", "llr", "gene", "consequence",
                       "protein_change", "flags"]
    multi_rows = [r for r in rows[1:] if r[1] == str(pos) and r[0] == feature.contig]
    assert [r[6] for r in multi_rows] == ["synonymous", "missense", "NA"]


def test_summary_says_na_for_an_empty_class():
    from dnahnet_core.tasks.consequences import consequence_summary

    lines = consequence_summary({"synonymous": [0.1, -0.2], "missense": [-1.0]})
    assert lines[-1] == ("AUROC of -LLR, stop_gained vs synonymous: n/a "
                         "(0 stop_gained, 2 synonymous); chance 0.5")
    assert lines[1:3] == ["missense            1    -1.0000     -1.0000",
                          "synonymous          2    -0.0500     -0.0500"]


def test_summary_gives_an_interval_only_with_five_of_each_class():
    from dnahnet_core.tasks.consequences import consequence_summary

    few = consequence_summary({"stop_gained": [-3.0, -2.0], "synonymous": [0.1]})
    assert few[-1] == ("AUROC of -LLR, stop_gained vs synonymous: 1.000 (2 stop_gained, "
                       "1 synonymous: too few for an interval, at least 5 of each); chance 0.5")
    enough = consequence_summary({"stop_gained": [-3.0, -2.0, -1.5, 0.2, -0.5],
                                  "synonymous": [0.1, -0.1, 0.3, -1.0, 0.0]})
    assert enough[-1].startswith("AUROC of -LLR, stop_gained vs synonymous: 0.800 [95% CI ")
    assert enough[-1].endswith("(5 stop_gained, 5 synonymous); chance 0.5")


def test_genetic_code_needs_an_annotation_and_a_known_table(tmp_path):
    vcf = DEMO_DATA / "demo_variants.vcf"
    fasta = DEMO_DATA / "mycoplasma_alvi.fna.gz"
    base = [sys.executable, "-m", "dnahnet_cli", "score-variants", str(vcf), "-r", str(fasta),
            "--model", "dnahnet-tiny", "-o", str(tmp_path / "o.vcf")]
    for extra, code, message in (
        (["--genetic-code", "4"], 2,
         "dnahnet: error: Invalid value for '--genetic-code': needs --annotation"),
        (["--genetic-code", "2", "--annotation", str(DEMO_DATA / "mycoplasma_alvi.gff.gz")], 2,
         "dnahnet: error: Invalid value for '--genetic-code': 2: not a supported code"),
    ):
        done = subprocess.run(base + extra, capture_output=True, text=True, timeout=300)
        assert done.returncode == code and done.stderr.startswith(message), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.vcf").exists()
