"""Contig name reconciliation: exact, accession (NCBI pipe headers, versions), chrom-map."""

from __future__ import annotations

import pytest

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.contigs import ContigMatcher, accessions_of, read_chrom_map, split_version

MYCOPLASMA = ["NZ_JNJU01000001.1", "NZ_JNJU01000002.1", "NZ_KL370824.1"]


def test_accessions_of_pipe_header():
    assert accessions_of("gi|87162298|ref|NC_007795.1|") == ["NC_007795.1"]
    assert accessions_of("NC_000902.1") == ["NC_000902.1"]
    assert accessions_of("chromosome one") == []
    assert split_version("NC_007795.1") == ("NC_007795", "1")
    assert split_version("NC_007795") == ("NC_007795", None)


def test_exact_match_first():
    matcher = ContigMatcher(["NC_007795", "NC_007795.1"])
    assert matcher.resolve("NC_007795") == "NC_007795"
    assert matcher.resolve("NC_007795.1") == "NC_007795.1"


def test_versionless_and_gi_header():
    matcher = ContigMatcher(["gi|87162298|ref|NC_007795.1|", "plasmid"])
    assert matcher.resolve("NC_007795") == "gi|87162298|ref|NC_007795.1|"
    assert matcher.resolve("NC_007795.1") == "gi|87162298|ref|NC_007795.1|"
    assert matcher.resolve("NC_007795.2") is None  # a different sequence version
    assert matcher.resolve("plasmid") == "plasmid"
    # a versioned query finds a versionless reference record
    assert ContigMatcher(["NZ_KL370824"]).resolve("NZ_KL370824.1") == "NZ_KL370824"


def test_unknown_contig_lists_both_name_sets():
    matcher = ContigMatcher(MYCOPLASMA, reference_label="genome.fa", query_label="in.vcf")
    with pytest.raises(DnahnetError) as info:
        matcher.match_all(["NZ_JNJU01000001.1", "chr1"], where="in.vcf")
    message = str(info.value)
    assert "chr1" in message and "NZ_KL370824.1" in message and "--chrom-map" in message
    assert "\n" not in message


def test_a_command_without_a_map_option_is_not_told_to_give_one():
    matcher = ContigMatcher(MYCOPLASMA, reference_label="genome.fa", query_label="regions.bed",
                            map_option=None)
    with pytest.raises(DnahnetError) as info:
        matcher.match_all(["chr1"], where="regions.bed")
    assert "--chrom-map" not in str(info.value)
    assert str(info.value).endswith("(rename the contigs of one file to match the other)")


def test_ambiguous_versionless_is_an_error():
    matcher = ContigMatcher(["NC_1.1", "NC_1.2"])
    with pytest.raises(DnahnetError, match="several"):
        matcher.resolve("NC_1")


def test_chrom_map(tmp_path):
    path = tmp_path / "map.tsv"
    path.write_text("# vcf\treference\nchr\tNZ_JNJU01000002.1\n\nplasmid\tNZ_KL370824\n")
    mapping = read_chrom_map(path)
    matcher = ContigMatcher(MYCOPLASMA, chrom_map=mapping)
    assert matcher.resolve("chr") == "NZ_JNJU01000002.1"
    assert matcher.resolve("plasmid") == "NZ_KL370824.1"  # map targets are matched too
    assert matcher.resolve("NZ_JNJU01000001") == "NZ_JNJU01000001.1"


def test_chrom_map_errors(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nonly-one-column\n")
    with pytest.raises(DnahnetError, match=r"bad.tsv: line 2"):
        read_chrom_map(bad)
    with pytest.raises(DnahnetError, match="not a record"):
        ContigMatcher(MYCOPLASMA, chrom_map={"chr": "missing"})
