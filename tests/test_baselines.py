"""Trivial baselines beside every metric: BLOSUM62 against published values, the baselines'
AUROC and Spearman against independent brute-force computations, pooled vs per-genome
(macro) AUROC, the bootstrap intervals, and the essentiality / score-dms commands."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from Bio.Seq import Seq
from Bio.SeqUtils import gc_fraction
from conftest import DEMO_DATA, TEST_DATA

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.annotations import Feature, load_annotated_genome
from dnahnet_core.io.labels import read_genome_manifest
from dnahnet_core.tasks import baselines as bl
from dnahnet_core.tasks import classification_metrics as cm
from dnahnet_core.tasks.essentiality import GenomeInput, RankedGene, genome_inputs
from dnahnet_core.tasks.essentiality_labels import LabelSet, evaluate_sets

ANNOTATED = TEST_DATA / "annotated"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


# ---------------------------------------------------------------- independent metrics


def _pairwise_auroc(scores, labels) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def _ranks(values) -> list[float]:
    """Ranks 1..n with ties given their average rank, by counting."""
    return [1 + sum(w < v for w in values) + 0.5 * (sum(w == v for w in values) - 1)
            for v in values]


def _spearman(x, y) -> float:
    return statistics.correlation(_ranks(list(x)), _ranks(list(y)))


# ---------------------------------------------------------------- BLOSUM62


def test_blosum62_matches_the_published_matrix():
    diagonal = {"A": 4, "R": 5, "N": 6, "D": 6, "C": 9, "Q": 5, "E": 5, "G": 6, "H": 8, "I": 4,
                "L": 4, "K": 5, "M": 5, "F": 6, "P": 7, "S": 4, "T": 5, "W": 11, "Y": 7, "V": 4}
    for aa, value in diagonal.items():
        assert bl.blosum62(aa, aa) == value
    known = {("I", "V"): 3, ("I", "L"): 2, ("F", "Y"): 3, ("W", "Y"): 2, ("K", "R"): 2,
             ("D", "E"): 2, ("E", "Q"): 2, ("S", "T"): 1, ("A", "G"): 0, ("W", "C"): -2,
             ("W", "P"): -4, ("C", "E"): -4, ("A", "*"): -4, ("*", "*"): 1}
    for (a, b), value in known.items():
        assert bl.blosum62(a, b) == bl.blosum62(b, a) == value
    for a, b in itertools.combinations(diagonal, 2):
        assert bl.blosum62(a, b) == bl.blosum62(b, a) <= min(diagonal[a], diagonal[b])


def test_dms_baselines_are_oriented_like_the_llr():
    changes = [[("A", "G")], [("A", "G"), ("L", "P")], [], None, [("W", "*")], [("I", "V")]]
    values = bl.dms_baselines(changes)
    np.testing.assert_array_equal(values["amino_acid_changes"], [-1, -2, 0, np.nan, -1, -1])
    np.testing.assert_array_equal(values["blosum62"], [0, np.nan, np.nan, np.nan, -4, 3])


# ---------------------------------------------------------------- essentiality baselines


@pytest.fixture(scope="module")
def mycoplasma():
    return load_annotated_genome(ANNOTATED / "mycoplasma_subset.fna.gz",
                                 ANNOTATED / "mycoplasma_subset.gff.gz")


def test_gene_features_against_biopython(mycoplasma):
    genes = [g for g in mycoplasma.features_of("CDS") if len(g.segments) == 1]
    values = bl.gene_baselines(genes, mycoplasma.contigs)
    for i, gene in enumerate(genes):
        seq = Seq(mycoplasma.contigs[gene.contig][gene.start - 1 : gene.end])
        size = len(mycoplasma.contigs[gene.contig])
        assert values["gene_length"][i] == len(seq) == gene.end - gene.start + 1
        assert values["gc_content"][i] == pytest.approx(gc_fraction(seq))
        middle = (gene.start - 1 + gene.end) / 2
        assert values["origin_proximity"][i] == pytest.approx(-min(middle, size - middle) / size)
    assert np.array_equal(bl.random_scores(5, 3), bl.random_scores(5, 3))
    assert not np.array_equal(bl.random_scores(5, 3), bl.random_scores(5, 4))


def test_gene_across_the_origin_is_read_across_it():
    sequence = "GG" + "A" * 96 + "CC"  # 100 nt; the gene is CC + GG across the origin
    gene = Feature("c", 99, 102, "+", "CDS", segments=((99, 102),))
    values = bl.gene_baselines([gene], {"c": sequence})
    assert values["gc_content"][0] == 1.0 and values["gene_length"][0] == 4


def _ranked(genes, scores, genome):
    return [RankedGene(g, s, i + 1, genome=genome) for i, (g, s) in enumerate(
        zip(genes, scores, strict=True))]


def test_baseline_aurocs_against_brute_force(mycoplasma):
    genes = mycoplasma.features_of("CDS")[:24]
    rng = np.random.default_rng(11)
    labels = {g.label: bool(i % 3 == 0) for i, g in enumerate(genes)}
    scores = rng.normal(size=len(genes))
    values = bl.gene_baselines(genes, mycoplasma.contigs)
    per_gene = {g: {k: float(v[i]) for k, v in values.items()} for i, g in enumerate(genes)}
    report = evaluate_sets([LabelSet(labels, "labels.tsv", _ranked(genes, scores, "myco"))],
                           baselines=per_gene, bootstrap=50, seed=2)
    y = [labels[g.label] for g in genes]
    assert report["auroc"] == pytest.approx(_pairwise_auroc(-scores, y))
    for name in ("gene_length", "gc_content", "origin_proximity"):
        assert report["baselines"][name]["auroc"] == pytest.approx(
            _pairwise_auroc(values[name], y))
    # the random baseline: seeded uniform scores over the labelled genes, in label order
    random = bl.random_scores(len(genes), 2)
    assert report["baselines"]["random"]["auroc"] == pytest.approx(_pairwise_auroc(random, y))
    for entry in [report] + list(report["baselines"].values()):
        low, high = entry["auroc_ci95"]
        assert low <= entry["auroc"] <= high
    assert report["essential_fraction"] == pytest.approx(np.mean(y))
    assert report["n_genomes"] == 1 and report["macro_auroc"] == pytest.approx(report["auroc"])


# ---------------------------------------------------------------- pooled vs macro, bootstrap


def test_per_genome_base_rate_pooled_versus_macro():
    """A score that only knows which genome a gene is in: pooled AUROC well above 0.5,
    per-genome (macro) AUROC exactly 0.5."""
    y = np.array([1] * 8 + [0] * 2 + [1] * 2 + [0] * 8, dtype=bool)  # genome a: 80% E
    genome = np.array(["a"] * 10 + ["b"] * 10)
    base_rate = np.where(genome == "a", 0.8, 0.2)
    informative = np.r_[np.linspace(1, 0, 10), np.linspace(1, 0, 10)]  # E first in each
    result = cm.bootstrap_aurocs({"base_rate": base_rate, "within": informative}, y, genome,
                                 bootstrap=200, seed=0)
    rate = result["base_rate"]
    assert rate["auroc"] == pytest.approx(_pairwise_auroc(base_rate, y)) == pytest.approx(0.8)
    assert rate["macro_auroc"] == 0.5
    assert rate["groups"]["a"]["auroc"] == rate["groups"]["b"]["auroc"] == 0.5
    assert rate["macro_auroc_ci95"] == [0.5, 0.5]  # resampled within genomes: still all ties
    within = result["within"]
    assert within["macro_auroc"] == pytest.approx(np.mean(
        [_pairwise_auroc(informative[genome == g], y[genome == g]) for g in "ab"])) == 1.0
    assert within["auroc"] == pytest.approx(_pairwise_auroc(informative, y))
    assert within["auroc"] < 1.0


def test_bootstrap_interval_follows_its_documented_draws():
    rng = np.random.default_rng(4)
    y = rng.random(40) < 0.4
    genome = np.where(np.arange(40) < 25, "x", "y")
    score = rng.normal(size=40) + y
    got = cm.bootstrap_aurocs({"s": score}, y, genome, bootstrap=30, seed=9)["s"]
    draw = np.random.default_rng(9)
    pooled, macro = [], []
    strata = [np.flatnonzero((genome == g) & (y == c)) for g in ("x", "y") for c in (True, False)]
    for _ in range(30):
        index = np.concatenate([s[draw.integers(0, s.size, s.size)] for s in strata])
        pooled.append(_pairwise_auroc(score[index], y[index]))
        macro.append(np.mean([_pairwise_auroc(score[index][genome[index] == g],
                                              y[index][genome[index] == g]) for g in "xy"]))
    assert got["auroc_ci95"] == pytest.approx(np.quantile(pooled, [0.025, 0.975]))
    assert got["macro_auroc_ci95"] == pytest.approx(np.quantile(macro, [0.025, 0.975]))
    assert cm.bootstrap_aurocs({"s": score}, y, genome, bootstrap=0)["s"]["auroc_ci95"] is None


def test_evaluate_two_genomes_reports_per_genome_and_macro(mycoplasma):
    lepto = load_annotated_genome(ANNOTATED / "leptospira_subset.gbk.gz")
    sets, per_gene, y_all, s_all, g_all = [], {}, [], [], []
    for name, genome, step in (("myco", mycoplasma, 3), ("lepto", lepto, 2)):
        genes = [g for g in genome.features_of("CDS") if not g.pseudo][:12]
        scores = np.linspace(-1, 1, len(genes)) * (1 if name == "myco" else -1)
        labels = {g.label: bool(i % step == 0) for i, g in enumerate(genes)}
        sets.append(LabelSet(labels, f"{name}.tsv", _ranked(genes, scores, name)))
        values = bl.gene_baselines(genes, genome.contigs)
        per_gene.update({g: {k: float(v[i]) for k, v in values.items()}
                         for i, g in enumerate(genes)})
        y_all += [labels[g.label] for g in genes]
        s_all += list(-scores)
        g_all += [name] * len(genes)
    report = evaluate_sets(sets, baselines=per_gene, bootstrap=20, seed=0)
    y, s, g = np.array(y_all), np.array(s_all), np.array(g_all)
    per = [_pairwise_auroc(s[g == n], y[g == n]) for n in ("myco", "lepto")]
    assert report["n_genomes"] == 2 and [e["genome"] for e in report["genomes"]] == ["myco",
                                                                                   "lepto"]
    assert [e["auroc"] for e in report["genomes"]] == pytest.approx(per)
    assert report["macro_auroc"] == pytest.approx(np.mean(per))
    assert report["auroc"] == pytest.approx(_pairwise_auroc(s, y))
    assert report["macro_auroc"] != pytest.approx(report["auroc"])
    assert report["macro_auprc"] == pytest.approx(np.mean([e["auprc"] for e in report["genomes"]]))
    assert set(report["genomes"][0]["baselines"]) == set(bl.ESSENTIALITY_BASELINES)


# ---------------------------------------------------------------- inputs


def test_genome_inputs_pair_fasta_with_annotation(tmp_path):
    fna, gff = ANNOTATED / "mycoplasma_subset.fna.gz", ANNOTATED / "mycoplasma_subset.gff.gz"
    gbk = ANNOTATED / "leptospira_subset.gbk.gz"
    inputs = genome_inputs([fna, gff, gbk])
    assert inputs == [GenomeInput(fna, gff), GenomeInput(gbk)]
    assert [i.label for i in inputs] == ["mycoplasma_subset", "leptospira_subset"]
    with pytest.raises(DnahnetError, match="FASTA has no annotation"):
        genome_inputs([gbk, fna])
    with pytest.raises(DnahnetError) as error:  # the two files the wrong way round
        genome_inputs([gff, fna])
    assert str(error.value).endswith(f"(the FASTA comes first: {fna} {gff}, if {gff} is its "
                                     "annotation)")
    with pytest.raises(DnahnetError, match="one of the two"):
        genome_inputs([gbk], tmp_path / "m.tsv")
    manifest = tmp_path / "genomes.tsv"
    (tmp_path / "data").mkdir()
    for path in (fna, gff):
        (tmp_path / "data" / path.name).write_bytes(path.read_bytes())
    manifest.write_text("# two genomes\nname\tgenome\tannotation\n"
                        f"myco\tdata/{fna.name}\tdata/{gff.name}\nlepto\t{gbk}\t\n")
    rows = read_genome_manifest(manifest)
    assert rows == [
        {"genome": tmp_path / "data" / fna.name, "annotation": tmp_path / "data" / gff.name,
         "labels": None, "name": "myco"},
        {"genome": gbk, "annotation": None, "labels": None, "name": "lepto"},
    ]
    assert [i.label for i in genome_inputs(None, manifest)] == ["myco", "lepto"]
    manifest.write_text("genome\tcolour\nx\tred\n")
    with pytest.raises(DnahnetError, match=r"genomes.tsv: line 1: the header must name"):
        read_genome_manifest(manifest)
    manifest.write_text("genome\nmissing.fna\n")
    with pytest.raises(DnahnetError, match=r"genomes.tsv: line 2: genome .*missing.fna: no such"):
        read_genome_manifest(manifest)


# ---------------------------------------------------------------- the commands


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "dnahnet_cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=ENV, timeout=600)


def test_cli_essentiality_two_genomes_with_baselines(tmp_path):
    fna, gff = ANNOTATED / "mycoplasma_subset.fna.gz", ANNOTATED / "mycoplasma_subset.gff.gz"
    gbk = ANNOTATED / "leptospira_subset.gbk.gz"
    myco = load_annotated_genome(fna, gff)
    lepto = load_annotated_genome(gbk)
    labels = tmp_path / "labels.tsv"
    rows = ["locus_tag\tessential"]
    for genome in (myco, lepto):
        cds = [g for g in genome.features_of("CDS") if not g.pseudo]
        rows += [f"{g.label}\t{'E' if i % 3 == 0 else 'NE'}" for i, g in enumerate(cds)]
    labels.write_text("\n".join(rows) + "\n")
    out = tmp_path / "rank.tsv"
    run = _run("essentiality", fna, gff, gbk, "--model", "dnahnet-tiny", "--window", "96",
               "--no-reverse-complement", "--device", "cpu", "-o", out, "--labels", labels,
               "--bootstrap", "40", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    ranking = [line.split("\t") for line in out.read_text().splitlines()]
    assert ranking[0][-1] == "genome"
    genomes = [r[-1] for r in ranking[1:]]
    assert genomes == sorted(genomes, key=["mycoplasma_subset", "leptospira_subset"].index)
    for name in ("mycoplasma_subset", "leptospira_subset"):
        ranks = [int(r[8]) for r in ranking[1:] if r[-1] == name and r[8]]
        assert ranks == list(range(1, len(ranks) + 1))  # ranked within each genome
    report = json.loads((tmp_path / "rank.metrics.json").read_text())
    assert report["n_genomes"] == 2 and report["bootstrap"]["replicates"] == 40
    assert set(report["baselines"]) == {"gene_length", "gc_content", "origin_proximity",
                                        "random"}
    for entry in [report, *report["baselines"].values()]:
        assert entry["auroc_ci95"] is not None and entry["macro_auroc_ci95"] is not None
    assert [g["genome"] for g in report["genomes"]] == ["mycoplasma_subset", "leptospira_subset"]
    stderr = run.stderr
    assert "macro AUROC [95% CI]" in stderr and "gene length" in stderr
    assert "in 2 genomes" in stderr and "leptospira_subset: " in stderr
    assert "AUPRC of a random ranking = the essential fraction" in stderr
    # the same run from a manifest gives the same metrics
    manifest = tmp_path / "genomes.tsv"
    manifest.write_text(f"genome\tannotation\n{fna}\t{gff}\n{gbk}\t\n")
    run = _run("essentiality", "--manifest", manifest, "--model", "dnahnet-tiny",
               "--window", "96", "--no-reverse-complement", "--device", "cpu",
               "-o", tmp_path / "again.tsv", "--labels", labels, "--bootstrap", "40",
               cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    again = json.loads((tmp_path / "again.metrics.json").read_text())
    assert again["baselines"] == report["baselines"] and again["auroc"] == report["auroc"]


def test_cli_rejects_a_negative_bootstrap(tmp_path):
    run = _run("essentiality", ANNOTATED / "leptospira_subset.gbk.gz", "--bootstrap", "-1",
               cwd=tmp_path)
    assert run.returncode == 2 and "--bootstrap" in run.stderr and "Traceback" not in run.stderr


# ---------------------------------------------------------------- score-dms


def _dms_assay(tmp_path, strand):
    """A context with one real Mycoplasma gene, and a score set of single and double
    nucleotide changes whose scores fall with the amino-acid changes and with stops."""
    contig, (start, end) = "NZ_JNJU01000007.1", {"+": (33531, 34013), "-": (40946, 41179)}[strand]
    with gzip.open(DEMO_DATA / "mycoplasma_alvi.fna.gz", "rt") as handle:
        text = handle.read()
    record = text.split(f">{contig}")[1].split(">")[0]
    sequence = "".join(record.splitlines()[1:])
    flank = 150
    context = sequence[start - 1 - flank : end + flank]
    folder = tmp_path / f"assay{'plus' if strand == '+' else 'minus'}"
    folder.mkdir()
    (folder / "context.fa").write_text(f">ctx\n{context}\n")
    coding = context[flank : flank + end - start + 1]
    coding = coding if strand == "+" else str(Seq(coding).reverse_complement())
    rng = np.random.default_rng(1 if strand == "+" else 2)
    rows = []
    for c_pos in range(4, 70):
        ref = coding[c_pos - 1]
        for alt in "ACGT":
            if alt != ref and rng.random() < 0.5:
                rows.append(f"c.{c_pos}{ref}>{alt}")
    rows += [f"c.[{p}{coding[p - 1]}>{'A' if coding[p - 1] != 'A' else 'C'};"
             f"{p + 3}{coding[p + 2]}>{'G' if coding[p + 2] != 'G' else 'T'}]"
             for p in range(10, 60, 7)]
    table = pd.DataFrame({"hgvs_nt": rows, "hgvs_pro": "NA"})
    table["score"] = [f"{v:.4f}" for v in rng.normal(size=len(rows))]
    table.loc[5, "score"] = "NA"  # an experimental score that is missing
    (folder / "scores.csv").write_text(table.to_csv(index=False))
    return folder, f"{flank + 1}-{flank + end - start + 1}:{strand}"


def test_cli_score_dms_baselines_per_assay_and_macro(tmp_path):
    assays = [_dms_assay(tmp_path, s) for s in "+-"]
    manifest = tmp_path / "assays.tsv"
    manifest.write_text("name\tscores\tsequence\tcds\tgenetic_code\n" + "".join(
        f"{n}\t{f.name}/scores.csv\t{f.name}/context.fa\t{cds}\t4\n"
        for n, (f, cds) in zip(("plus", "minus"), assays, strict=True)))
    out, metrics = tmp_path / "dms.tsv", tmp_path / "dms.json"
    args = ["score-dms", "--manifest", manifest, "-o", out, "--model", "dnahnet-tiny",
            "--window", "48", "--no-reverse-complement", "--device", "cpu", "--metrics", metrics]
    run = _run(*args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == ["assay", "line", "hgvs", "score", "llr", "aa_changes",
                                   "blosum62", "codons", "status"]
    report = json.loads(metrics.read_text())
    for assay in report["assays"]:
        rows = table[(table["assay"] == assay["name"]) & np.isfinite(table["llr"])
                     & np.isfinite(table["score"])]
        assert assay["correlated"] == len(rows) and assay["no_score"] == 1
        # the table rounds the LLR to 4 decimals, which can tie a few ranks
        assert assay["spearman"] == pytest.approx(_spearman(rows["llr"], rows["score"]),
                                                  abs=5e-3)
        changes = assay["baselines"]["amino_acid_changes"]
        assert changes["n"] == len(rows)
        assert changes["spearman"] == pytest.approx(_spearman(-rows["aa_changes"], rows["score"]))
        single = rows[rows["aa_changes"] == 1]
        assert assay["baselines"]["blosum62"]["n"] == assay["single_substitutions"] == len(single)
        assert assay["baselines"]["blosum62"]["spearman"] == pytest.approx(
            _spearman(single["blosum62"], single["score"]))
        assert assay["spearman_single"] == pytest.approx(_spearman(single["llr"],
                                                                   single["score"]), abs=5e-3)
        assert set(rows["aa_changes"]) >= {0, 1, 2}
    for name in ("model", "amino_acid_changes", "blosum62"):
        values = [a["spearman"] if name == "model" else a["baselines"][name]["spearman"]
                  for a in report["assays"]]
        assert report["macro"][name] == {"spearman": pytest.approx(np.mean(values)),
                                         "assays": 2}
    assert "macro-averaged Spearman over 2 assays" in run.stderr
    assert "experimental scores: low = damaging" in run.stderr
    # --damaging high: the scores are read the other way round, every correlation flips
    flipped = _run(*args[:-1], tmp_path / "flipped.json", "--damaging", "high", cwd=tmp_path)
    assert flipped.returncode == 0, flipped.stderr
    other = json.loads((tmp_path / "flipped.json").read_text())
    for a, b in zip(report["assays"], other["assays"], strict=True):
        assert b["spearman"] == pytest.approx(-a["spearman"])
        assert b["baselines"]["blosum62"]["spearman"] == pytest.approx(
            -a["baselines"]["blosum62"]["spearman"])
    bad = _run(*args[:-2], "--damaging", "sideways", cwd=tmp_path)
    assert bad.returncode == 2 and "--damaging" in bad.stderr


def test_sign_check_reads_nonsense_against_synonymous():
    from dnahnet_core.tasks.dms import DmsVariant, _sign_check

    variants = [DmsVariant(i, "", score, protein_changes=changes) for i, (score, changes) in
                enumerate([(-3.0, [("K", "*")]), (-2.5, [("L", "*")]), (0.1, []), (0.0, []),
                           (-1.0, [("A", "G")])])]
    assert _sign_check(variants, 1.0).startswith("consistent (median oriented score: "
                                                 "nonsense -2.75 over 2, synonymous 0.05 over 2)")
    assert _sign_check(variants, -1.0).startswith("REVERSED?")
    assert _sign_check(variants[2:], 1.0) == ("n/a (0 nonsense, 2 synonymous variants with "
                                              "a score)")
