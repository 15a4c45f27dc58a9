"""Annotation IO: FASTA + GFF3, GFF3 with ##FASTA (Prokka), GenBank; real files only."""

from __future__ import annotations

import gzip
from dataclasses import astuple

import pytest
from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqFeature import CompoundLocation, SeqFeature, SimpleLocation
from Bio.SeqRecord import SeqRecord

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.annotations import detect_format, load_annotated_genome
from tests.conftest import DEMO_DATA, TEST_DATA

ANNOTATED = TEST_DATA / "annotated"
FNA = ANNOTATED / "mycoplasma_subset.fna.gz"
GFF = ANNOTATED / "mycoplasma_subset.gff.gz"
PROKKA = ANNOTATED / "mycoplasma_subset.prokka.gff.gz"
GBK = ANNOTATED / "mycoplasma_subset.gbk.gz"
ECOLI = ANNOTATED / "ecoli_prokka_subset.gff.gz"
LEPTOSPIRA = ANNOTATED / "leptospira_subset.gbk.gz"


def _key(f):
    # everything but where/id (IDs legitimately differ between annotators' layouts)
    return astuple(f)[:15]


@pytest.fixture(scope="module")
def three_forms():
    return [
        load_annotated_genome(FNA, GFF),
        load_annotated_genome(PROKKA),
        load_annotated_genome(GBK),
    ]


def test_formats_detected_from_content(tmp_path):
    assert detect_format(FNA) == "fasta"
    assert detect_format(GFF) == "gff3"
    assert detect_format(PROKKA) == "gff3"
    assert detect_format(GBK) == "genbank"
    renamed = tmp_path / "annotation.txt"  # the name says nothing, gzip bytes do
    renamed.write_bytes(GBK.read_bytes())
    assert detect_format(renamed) == "genbank"
    bogus = tmp_path / "notes.gff"
    bogus.write_text("hello world\n")
    with pytest.raises(DnahnetError, match="notes.gff: not FASTA, GFF3 or GenBank"):
        detect_format(bogus)


def test_three_forms_same_genome_same_genes(three_forms):
    fasta_gff, prokka, genbank = three_forms
    assert fasta_gff.contigs == prokka.contigs == genbank.contigs
    assert [len(s) for s in fasta_gff.contigs.values()] == [24000, 12000, 1108]
    for kind in ("CDS", "tRNA"):
        keys = [[_key(f) for f in form.features_of(kind)] for form in three_forms]
        assert keys[0] == keys[1] == keys[2]
    cds = fasta_gff.features_of("CDS")
    assert len(cds) == 42
    assert {f.locus_tag for f in cds if f.pseudo} == {"T383_RS0102865", "T383_RS0102930"}
    assert {f.locus_tag for f in cds if f.partial_5} == {"T383_RS03915", "T383_RS03925"}
    pdha = next(f for f in cds if f.name == "pdhA")
    assert (pdha.contig, pdha.start, pdha.end) == ("NZ_JNJU01000001.1", 1112, 2191)
    assert pdha.strand == "+"
    assert pdha.product.startswith("pyruvate dehydrogenase")
    # the sequence is the bundled demo genome's, unchanged
    with gzip.open(DEMO_DATA / "mycoplasma_alvi.fna.gz", "rt") as handle:
        first = next(SeqIO.parse(handle, "fasta"))
    assert fasta_gff.contigs["NZ_JNJU01000001.1"] == str(first.seq)[:24000].upper()


def test_refseq_gff_cds_inherits_from_gene_parent(three_forms):
    fasta_gff = three_forms[0]
    genes = {f.locus_tag: f for f in fasta_gff.features_of(["gene", "pseudogene"])}
    assert genes["T383_RS0102865"].type == "pseudogene" and genes["T383_RS0102865"].pseudo
    assert genes["T383_RS0100010"].name == "pdhA"
    both = fasta_gff.features_of({"CDS", "tRNA", "gene"})
    assert len(both) == len(fasta_gff.features_of("CDS")) + len(
        fasta_gff.features_of("tRNA")
    ) + len(fasta_gff.features_of("gene"))


def test_third_party_prokka_gff_with_fasta():
    genome = load_annotated_genome(ECOLI)
    assert {n: len(s) for n, s in genome.contigs.items()} == {
        "BAC_00031": 12012, "BAC_00032": 10489, "BAC_00191": 223,
    }
    cds = genome.features_of("CDS")
    assert len(cds) == 28
    assert all(f.locus_tag.startswith("BAC_") and f.strand in "+-" for f in cds)
    rrna = genome.features_of("rRNA")
    assert [(f.contig, f.start, f.end, f.strand) for f in rrna] == [
        ("BAC_00031", 29, 139, "+"), ("BAC_00191", 8, 118, "-"),
    ]
    assert {f.product for f in rrna} == {"5S ribosomal RNA"}
    # Prokka's start codons: each complete CDS begins with a start codon on its strand
    from dnahnet_core.alphabet import reverse_complement

    starts = []
    for f in cds:
        seq = genome.contigs[f.contig][f.start - 1 : f.end]
        starts.append((seq if f.strand == "+" else reverse_complement(seq))[:3])
    assert sum(s in {"ATG", "GTG", "TTG"} for s in starts) >= len(cds) - 2


def test_third_party_genbank_pseudo_partial_codon_start():
    genome = load_annotated_genome(LEPTOSPIRA)
    assert list(genome.contigs)[0] == "NZ_AHMY02000075.1"
    assert len(genome.contigs["NZ_AHMY02000075.1"]) == 683
    cds = genome.features_of("CDS")
    first = cds[0]
    assert (first.start, first.end, first.strand) == (1, 227, "+")
    assert first.pseudo and first.partial_5 and not first.partial_3
    assert first.phase == 2  # /codon_start=3
    assert first.product == "DUF1564 domain-containing protein"
    assert sum(f.pseudo for f in cds) == 7
    assert any(f.old_locus_tag.startswith("LEP1GSC081_") for f in cds)


def test_gff_seqids_matching_no_fasta_record():
    with pytest.raises(DnahnetError) as info:
        load_annotated_genome(DEMO_DATA / "phage_vt2_sakai.fna.gz", GFF)
    message = str(info.value)
    assert "mycoplasma_subset.gff.gz" in message and "NZ_JNJU01000001.1" in message
    assert "NC_000902.1" in message and "\n" not in message


def test_contig_names_reconciled_by_accession(tmp_path, three_forms):
    contigs = three_forms[0].contigs
    fasta = tmp_path / "genome.fa"
    fasta.write_text(
        "".join(f">gi|{i}|ref|{name}| Mycoplasma\n{seq}\n" for i, (name, seq) in
                enumerate(contigs.items()))
    )
    gff = tmp_path / "genes.gff"  # versionless seqids, as some annotators write
    with gzip.open(GFF, "rt") as handle:
        gff.write_text(handle.read().replace(".1\t", "\t"))
    genome = load_annotated_genome(fasta, gff)
    assert {f.contig for f in genome.features} == {f"gi|{i}|ref|{n}|" for i, n in
                                                   enumerate(contigs)}
    assert [_key(f)[1:] for f in genome.features_of("CDS")] == [
        _key(f)[1:] for f in three_forms[0].features_of("CDS")
    ]


def _strip_origin(text: str) -> str:
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("ORIGIN"):
            skipping = True
            continue
        if line.startswith("//"):
            skipping = False
        if not skipping:
            out.append(line)
    return "".join(out)


def test_genbank_without_sequence(tmp_path):
    with gzip.open(LEPTOSPIRA, "rt") as handle:
        text = handle.read()
    bare = tmp_path / "annotation_only.gbk"
    bare.write_text(_strip_origin(text))
    with pytest.raises(DnahnetError, match=r"annotation_only.gbk: GenBank record "
                       r"NZ_AHMY02000075.1 has no sequence"):
        load_annotated_genome(bare)
    # with the FASTA beside it, the same annotation works
    full = load_annotated_genome(LEPTOSPIRA)
    fasta = tmp_path / "genome.fa"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in full.contigs.items()))
    paired = load_annotated_genome(fasta, bare)
    assert [_key(f) for f in paired.features] == [_key(f) for f in full.features]


def test_fasta_alone_and_gff_without_fasta_are_errors():
    with pytest.raises(DnahnetError, match="FASTA has no annotation"):
        load_annotated_genome(FNA)
    with pytest.raises(DnahnetError, match="GFF3 has no ##FASTA section"):
        load_annotated_genome(GFF)


def test_a_fasta_section_without_a_header_line_is_named_as_such(tmp_path):
    text = gzip.decompress(GFF.read_bytes()).decode()
    headless = tmp_path / "headless.gff"
    headless.write_text(text + "##FASTA\nACGTACGT\n")
    with pytest.raises(DnahnetError, match=r"headless.gff: ##FASTA section: sequence before "
                                           r"its first '>' header line"):
        load_annotated_genome(headless)


def test_gff_with_a_byte_order_mark_and_spaces_after_semicolons(tmp_path):
    """A GFF3 saved by a Windows editor (BOM, CRLF) whose attributes read ``ID=x; Parent=y``
    gives the same genes, locus tags included, as the original."""
    text = gzip.decompress(GFF.read_bytes()).decode()
    edited = tmp_path / "edited.gff"
    edited.write_bytes(b"\xef\xbb\xbf" + text.replace(";", "; ").replace("\n", "\r\n").encode())
    expected = load_annotated_genome(FNA, GFF).features_of("CDS")
    found = load_annotated_genome(FNA, edited).features_of("CDS")
    assert [_key(f) for f in found] == [_key(f) for f in expected]
    assert all(f.locus_tag for f in found)


def test_malformed_gff_line_names_the_line(tmp_path):
    bad = tmp_path / "bad.gff"
    bad.write_text("##gff-version 3\nNZ_JNJU01000009.1\tx\tCDS\t10\tten\t.\t+\t0\tID=a\n")
    with pytest.raises(DnahnetError, match=r"bad.gff: line 2: start/end must be integers"):
        load_annotated_genome(FNA, bad)


def test_origin_crossing_features_gff_and_genbank(tmp_path, three_forms):
    seq = three_forms[0].contigs["NZ_JNJU01000009.1"]  # 1108 nt
    length = len(seq)
    fasta = tmp_path / "c.fa"
    fasta.write_text(f">c\n{seq}\n")
    gff = tmp_path / "c.gff"
    gff.write_text(
        "##gff-version 3\n"
        f"c\tx\tCDS\t1000\t{length + 60}\t.\t+\t0\tID=wrap;locus_tag=wrap\n"  # NCBI style
        "c\tx\tCDS\t100\t400\t.\t-\t0\tID=plain;locus_tag=plain\n"
    )
    found = {f.locus_tag: f for f in load_annotated_genome(fasta, gff).features}
    assert found["wrap"].crosses_origin and not found["plain"].crosses_origin

    record = SeqRecord(Seq(seq), id="c", name="c", annotations={"molecule_type": "DNA",
                                                                 "topology": "circular"})
    join = CompoundLocation([SimpleLocation(999, length, 1), SimpleLocation(0, 60, 1)])
    minus = CompoundLocation([SimpleLocation(0, 60, -1), SimpleLocation(999, length, -1)])
    record.features = [
        SeqFeature(join, type="CDS", qualifiers={"locus_tag": ["plus"]}),
        SeqFeature(minus, type="CDS", qualifiers={"locus_tag": ["minus"]}),
    ]
    gbk = tmp_path / "c.gbk"
    SeqIO.write([record], gbk, "genbank")
    found = {f.locus_tag: f for f in load_annotated_genome(gbk).features}
    assert found["plus"].crosses_origin and found["plus"].segments == ((1000, length), (1, 60))
    assert found["minus"].crosses_origin and found["minus"].strand == "-"
    assert found["minus"].segments[0] == (1, 60)  # 5' part first
    assert found["plus"].length == found["minus"].length == length - 999 + 60
