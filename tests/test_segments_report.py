"""`dnahnet segments-report` against a plain, independent computation on a real genome.

The genome and annotation are the bundled Mycoplasma alvi draft (7 contigs, ~850 kb,
NCBI RefSeq GFF3 with partial and pseudo genes). Boundaries are random (seeded) so
that every class has hits; the test computes every number a second, deliberately
different way: GFF lines parsed by hand, per-position dictionaries, plain loops.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.annotations import load_annotated_genome
from dnahnet_core.io.fasta import load_genome
from dnahnet_core.io.tracks import read_bed, segments_bed
from dnahnet_core.tasks.segments import ContigSegments
from dnahnet_core.tasks.segments_report import build_report

DEMO = Path(__file__).resolve().parents[1] / "dnahnet_core" / "demo_data"
FASTA = DEMO / "mycoplasma_alvi.fna.gz"
GFF = DEMO / "mycoplasma_alvi.gff.gz"


@pytest.fixture(scope="module")
def genome():
    return load_genome(FASTA)


@pytest.fixture(scope="module")
def boundaries(genome):
    """Random stage-1 boundaries (rate 0.3), stage 2 a random subset of them."""
    rng = np.random.default_rng(11)
    out = {}
    for name, seq in genome.items():
        s1 = rng.random(len(seq)) < 0.3
        s2 = s1 & (rng.random(len(seq)) < 0.25)
        s1[0] = s2[0] = True
        out[name] = (s1, s2)
    return out


@pytest.fixture(scope="module")
def bed_path(tmp_path_factory, genome, boundaries):
    path = tmp_path_factory.mktemp("report") / "chunks.bed"
    with open(path, "w") as handle:
        for name in genome:
            s1, s2 = boundaries[name]
            prob = np.stack([s1, s2]).astype(np.float32)
            handle.write(segments_bed(ContigSegments(name, [1, 2], prob, np.stack([s1, s2]))))
    return path


def plain_cds(path=GFF):
    """CDS lines parsed by hand: (contig, start1, end1, strand, phase, has_start, has_stop)."""
    rows = []
    seen = set()
    with gzip.open(path, "rt") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            f = line.rstrip("\n").split("\t")
            if len(f) != 9 or f[2] not in ("CDS", "rRNA", "tRNA"):
                continue
            attrs = dict(kv.split("=", 1) for kv in f[8].split(";") if "=" in kv)
            if attrs.get("pseudo") == "true":
                continue
            assert attrs["ID"] not in seen  # single-part features only in this genome
            seen.add(attrs["ID"])
            start, end, strand = int(f[3]), int(f[4]), f[6]
            left, right = "start_range" in attrs, "end_range" in attrs
            has_start = not (right if strand == "-" else left)
            has_stop = not (left if strand == "-" else right)
            phase = int(f[7]) if f[7] in "012" else 0
            rows.append((f[0], f[2], start, end, strand, phase, has_start, has_stop))
    return rows


@pytest.fixture(scope="module")
def report(bed_path, genome):
    annotated = load_annotated_genome(FASTA, GFF)
    lengths = {name: len(seq) for name, seq in genome.items()}
    return build_report(read_bed(bed_path), annotated.features, lengths, str(bed_path))


def test_codon_position_rates_match_a_plain_count(report, boundaries):
    counts = {}  # (stage, strand, codon) -> [positions, boundaries]
    for contig, kind, start, end, strand, phase, _, _ in plain_cds():
        if kind != "CDS":
            continue
        for pos1 in range(start, end + 1):
            if pos1 == 1:
                continue  # 0-based position 0 is left out
            offset = pos1 - start if strand == "+" else end - pos1
            codon = (offset - phase) % 3 + 1
            for stage in (1, 2):
                hit = boundaries[contig][stage - 1][pos1 - 1]
                for key in ((stage, strand, codon), (stage, "all", codon)):
                    entry = counts.setdefault(key, [0, 0])
                    entry[0] += 1
                    entry[1] += int(hit)
    table = report.codon.set_index(["stage", "strand", "codon_position"])
    assert len(table) == len(counts) == 18
    for key, (n, b) in counts.items():
        assert table.loc[key, "positions"] == n, key
        assert table.loc[key, "boundaries"] == b, key
        assert table.loc[key, "rate"] == pytest.approx(b / n)


def test_region_class_rates_match_a_plain_per_position_labelling(report, genome, boundaries):
    label = {}  # (contig, pos0) -> class; the first class to claim a base keeps it

    def claim(contig, positions, name):
        for p in positions:
            label.setdefault((contig, p), name)

    rows = plain_cds()
    cds = [r for r in rows if r[1] == "CDS"]
    for contig, _, start, end, strand, _, has_start, _ in cds:
        if has_start:
            claim(contig, [start - 1, start, start + 1] if strand == "+" else
                  [end - 1, end - 2, end - 3], "start codon")
    for contig, _, start, end, strand, _, _, has_stop in cds:
        if has_stop:
            claim(contig, [end - 1, end - 2, end - 3] if strand == "+" else
                  [start - 1, start, start + 1], "stop codon")
    for contig, _, start, end, *_ in cds:
        claim(contig, range(start - 1, end), "CDS interior")
    for contig, kind, start, end, *_ in rows:
        if kind != "CDS":
            claim(contig, range(start - 1, end), "rRNA/tRNA")
    for contig, _, start, end, strand, _, has_start, _ in cds:
        if has_start:
            n = len(genome[contig])
            up = range(start - 101, start - 1) if strand == "+" else range(end, end + 100)
            claim(contig, [p for p in up if 0 <= p < n], "upstream")
    table = report.regions.set_index(["stage", "region"])
    for stage in (1, 2):
        n, b = {}, {}
        for contig, seq in genome.items():
            hits = boundaries[contig][stage - 1]
            for p in range(1, len(seq)):
                name = label.get((contig, p), "intergenic")
                n[name] = n.get(name, 0) + 1
                b[name] = b.get(name, 0) + int(hits[p])
        total_n, total_b = sum(n.values()), sum(b.values())
        assert table.loc[(stage, "genome"), "positions"] == total_n
        assert table.loc[(stage, "genome"), "boundaries"] == total_b
        for name in n:
            assert table.loc[(stage, name), "positions"] == n[name], (stage, name)
            assert table.loc[(stage, name), "boundaries"] == b[name], (stage, name)
            assert table.loc[(stage, name), "enrichment"] == pytest.approx(
                (b[name] / n[name]) / (total_b / total_n)
            )
    assert set(n) == {"start codon", "stop codon", "CDS interior", "rRNA/tRNA", "upstream",
                      "intergenic"}


def test_start_codon_metaplot_matches_a_plain_count(report, genome, boundaries):
    table = report.metaplot.set_index(["stage", "offset"])
    assert sorted(report.metaplot.offset.unique()) == list(range(-200, 201))
    starts = [(c, s, e, st) for c, k, s, e, st, _, has_start, _ in plain_cds()
              if k == "CDS" and has_start]
    for offset in (-200, -37, -1, 0, 1, 2, 3, 150, 200):
        for stage in (1, 2):
            n = b = 0
            for contig, start, end, strand in starts:
                pos = start - 1 + offset if strand == "+" else end - 1 - offset
                if 1 <= pos < len(genome[contig]):
                    n += 1
                    b += int(boundaries[contig][stage - 1][pos])
            assert table.loc[(stage, offset), "positions"] == n
            assert table.loc[(stage, offset), "boundaries"] == b


def test_report_cli_writes_tables_and_plots_and_prints_the_key_table(bed_path, tmp_path):
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "dnahnet_cli", "segments-report", str(bed_path),
         "--annotation", str(GFF), "--genome", str(FASTA), "-o", str(out)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    names = {"codon_position.tsv", "region_class.tsv", "start_metaplot.tsv",
             "codon_position.png", "region_class.png", "start_metaplot.png"}
    assert {p.name for p in out.iterdir()} == names
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    regions = pd.read_csv(out / "region_class.tsv", sep="\t")
    assert set(regions.columns) >= {"stage", "region", "positions", "boundaries", "rate"}
    assert "start codon" in result.stdout and "codon position 3" in result.stdout
    assert "stage2 rate" in result.stdout


def test_report_errors_on_a_bed_from_another_genome(tmp_path):
    bed = tmp_path / "other.bed"
    bed.write_text("chrZ\t0\t10\tstage1\t1000\t.\n")
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "dnahnet_cli", "segments-report", str(bed),
         "--annotation", str(GFF), "--genome", str(FASTA), "-o", str(out)],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("dnahnet: error:") and result.stderr.count("\n") == 1
    assert "chrZ" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_boundaries_past_the_contig_end_are_an_error(genome):
    from dnahnet_core.io.tracks import BedRecord
    from dnahnet_core.tasks.segments_report import boundaries_from_bed

    name = next(iter(genome))
    n = len(genome[name])
    with pytest.raises(DnahnetError, match="past the contig end"):
        boundaries_from_bed([BedRecord(name, n - 1, n + 5, "stage1", 0)], {name: n}, "x.bed")
    with pytest.raises(DnahnetError, match="not stage1"):
        boundaries_from_bed([BedRecord(name, 0, 5, "chunk", 0)], {name: n}, "x.bed")


def test_a_stage_without_boundaries_reports_nan_enrichment_not_a_crash(tmp_path):
    """A barely trained model can leave stage 2 with one chunk per contig (rate 0)."""
    phage_fa, phage_gff = DEMO / "phage_vt2_sakai.fna.gz", DEMO / "phage_vt2_sakai.gff.gz"
    length = len(load_genome(phage_fa)["NC_000902.1"])
    lines = [f"NC_000902.1\t{s}\t{min(s + 7, length)}\tstage1\t600\t." for s in range(0, length, 7)]
    lines.append(f"NC_000902.1\t0\t{length}\tstage2\t0\t.")
    bed = tmp_path / "chunks.bed"
    bed.write_text("\n".join(sorted(lines, key=lambda x: int(x.split("\t")[1]))) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "dnahnet_cli", "segments-report", str(bed), "--annotation",
         str(phage_gff), "--genome", str(phage_fa), "-o", str(tmp_path / "report")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    regions = pd.read_csv(tmp_path / "report" / "region_class.tsv", sep="\t")
    stage2 = regions[regions.stage == 2]
    assert (stage2.boundaries == 0).all() and stage2.enrichment.isna().all()
    stage1_genome = regions[(regions.stage == 1) & (regions.region == "genome")]
    assert stage1_genome.enrichment.iloc[0] == 1.0
