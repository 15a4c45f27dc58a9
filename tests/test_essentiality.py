"""Essentiality protocol: cassette placement, windows, scoring, labels, metrics, CLI."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from dnahnet_core.alphabet import decode, reverse_complement, reverse_complement_tokens
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io import labels as label_io
from dnahnet_core.io import tsv
from dnahnet_core.io.annotations import AnnotatedGenome, Feature, load_annotated_genome
from dnahnet_core.tasks import classification_metrics as cm
from dnahnet_core.tasks import essentiality as ess
from dnahnet_core.tasks import essentiality_labels as label_eval
from dnahnet_core.tasks import knockouts as ko
from tests.conftest import REPO, TEST_DATA

ANNOTATED = TEST_DATA / "annotated"
FNA = ANNOTATED / "mycoplasma_subset.fna.gz"


@pytest.fixture(scope="module")
def genome():
    return load_annotated_genome(FNA, ANNOTATED / "mycoplasma_subset.gff.gz")


@pytest.fixture(scope="module")
def tiny():
    from dnahnet_core.model import build_model, load_config

    return build_model(load_config("dnahnet-tiny"), seed=0).eval()


def _gene(genome, tag):
    return next(f for f in genome.features_of("CDS") if f.locus_tag == tag)


def test_cassette_plus_strand_base_by_base(genome):
    gene = _gene(genome, "T383_RS0100010")  # pdhA, 1112..2191 +
    contig = genome.contigs[gene.contig]
    plan = ko.plan_knockouts(genome, [gene], window=512, offset=12)
    (k,) = plan.knockouts
    assert k.cassette_genomic == (1111 + 12, 1111 + 27)
    ref, mut = decode(k.reference), decode(k.mutant)
    assert ref == contig[k.window.start : k.window.end]
    at = k.cassette_start
    start_codon = at - 12
    assert ref[start_codon : start_codon + 3] == "ATG" == contig[1111:1114]
    assert mut[at : at + 15] == "TAATAATAATAGTGA"
    assert mut[:at] == ref[:at] and mut[at + 15 :] == ref[at + 15 :]
    # in frame: the mutant gene reads codon, codon, codon, then TAA TAA TAA TAG TGA
    codons = [mut[start_codon + i : start_codon + i + 3] for i in range(0, 27, 3)]
    assert codons[:4] == [ref[start_codon + i : start_codon + i + 3] for i in range(0, 12, 3)]
    assert codons[4:] == ["TAA", "TAA", "TAA", "TAG", "TGA"]
    # centred on the gene, which is longer than the window: shifted to keep context
    assert at >= 512 // 8 and len(ref) == 512


def test_cassette_minus_strand_base_by_base(genome):
    gene = _gene(genome, "T383_RS0100080")  # ffh, 19708..21045 -
    contig = genome.contigs[gene.contig]
    (k,) = ko.plan_knockouts(genome, [gene], window=4096, offset=12).knockouts
    lo, hi = k.cassette_genomic
    assert hi == 21045 - 12 and lo == hi - 15
    coding = reverse_complement(contig[19708 - 1 : 21045])  # the gene on its own strand
    assert len(coding) % 3 == 0 and coding[-3:] in {"TAA", "TAG"}  # frame fixed by the stop
    assert coding[:3] == "TTA"  # a table-4 (Mycoplasma) start codon
    mut = decode(k.mutant)
    at = k.cassette_start
    assert mut[at : at + 15] == reverse_complement("TAATAATAATAGTGA") == "TCACTATTATTATTA"
    assert (k.reference != k.mutant).nonzero()[0].min() >= at
    # read on the gene's strand from its start codon: 4 codons, then the stops
    gene_strand = reverse_complement(mut[: at + 15 + 12])
    assert gene_strand[:12] == coding[:12] and gene_strand[12:27] == "TAATAATAATAGTGA"
    # a short-enough gene: the window is centred on it
    mid = (gene.start - 1 + gene.end) / 2
    assert abs((k.window.start + k.window.end) / 2 - mid) <= 1


def test_skipped_genes_have_reasons(genome):
    plan = ko.plan_knockouts(genome, genome.features_of("CDS"), window=512, offset=12)
    reasons = {s.gene.locus_tag: s.reason for s in plan.skipped}
    assert reasons == {
        "T383_RS03915": "partial at the 5' end (no start codon)",
        "T383_RS03925": "partial at the 5' end (no start codon)",
        "T383_RS0102865": "pseudogene",
        "T383_RS0102930": "pseudogene",
    }
    short = replace(_gene(genome, "T383_RS0100010"), end=1111 + 26, segments=((1112, 1137),))
    plan = ko.plan_knockouts(genome, [short], window=512, offset=12)
    assert plan.skipped[0].reason == (
        "too short: 26 nt, the cassette needs 27 (phase + --offset + 15)"
    )
    with pytest.raises(DnahnetError, match="--offset 10: must be a non-negative multiple of 3"):
        ko.plan_knockouts(genome, [short], window=512, offset=10)


def test_clipped_and_circular_windows(genome):
    seq = genome.contigs["NZ_JNJU01000009.1"]  # 1108 nt
    small = AnnotatedGenome(contigs={"c": seq})
    gene = Feature("c", 40, 300, "+", "CDS", locus_tag="g", segments=((40, 300),))
    (linear,) = ko.plan_knockouts(small, [gene], window=600, offset=12).knockouts
    assert (linear.window.start, linear.window.end) == (0, 469) and linear.window.clipped
    (circ,) = ko.plan_knockouts(small, [gene], window=600, offset=12, circular=True).knockouts
    assert (circ.window.start, circ.window.end) == (-131, 469)
    assert decode(circ.reference) == seq[-131:] + seq[:469]
    assert decode(circ.mutant)[131 + 39 + 12 : 131 + 39 + 27] == "TAATAATAATAGTGA"
    # a window wider than a circular contig is the whole contig once
    (whole,) = ko.plan_knockouts(small, [gene], window=5000, offset=12, circular=True).knockouts
    assert whole.window.length == len(seq)


@pytest.mark.parametrize(
    "name, tag", [("NZ_KL370825.1", "T383_RS0102830"), ("NZ_JNJU01000001.1", "T383_RS0100080")]
)
def test_gene_across_the_origin(genome, name, tag):
    """Rotate a real contig so a gene (plus, then minus strand) spans the origin."""
    gene = _gene(genome, tag)
    assert gene.contig == name
    seq = genome.contigs[name]
    cut = (gene.start + gene.end) // 2
    rotated = seq[cut:] + seq[:cut]
    length = len(seq)
    new_start = gene.start - cut + length
    wrapped = replace(gene, contig="r", start=new_start, end=new_start + gene.end - gene.start,
                      segments=((new_start, new_start + gene.end - gene.start),),
                      crosses_origin=True)
    original = ko.plan_knockouts(AnnotatedGenome({name: seq}), [gene], window=700,
                                  circular=True).knockouts[0]
    r_genome = AnnotatedGenome({"r": rotated})
    moved = ko.plan_knockouts(r_genome, [wrapped], window=700, circular=True).knockouts[0]
    assert np.array_equal(original.reference, moved.reference)
    assert np.array_equal(original.mutant, moved.mutant)
    skipped = ko.plan_knockouts(r_genome, [wrapped], window=700).skipped[0]
    assert skipped.reason.startswith("crosses the origin")


def _independent_delta(model, ref, mut, both):
    def total(tokens):
        with torch.inference_mode():
            x = torch.from_numpy(tokens.astype(np.int64))[None]
            return float(model.log_probs(x).double().sum())

    forward = total(mut) - total(ref)
    if not both:
        return forward
    reverse = total(reverse_complement_tokens(mut)) - total(reverse_complement_tokens(ref))
    return (forward + reverse) / 2


def test_scores_match_an_independent_computation(genome, tiny):
    genes = [_gene(genome, "T383_RS0100080"), _gene(genome, "T383_RS0100010")]
    plan = ko.plan_knockouts(genome, genes, window=256, offset=12)
    reused = ess.score_knockouts(plan.knockouts, tiny, device="cpu", batch_size=2)
    naive = ess.score_knockouts(plan.knockouts, tiny, device="cpu", prefix_reuse=False)
    forward = ess.score_knockouts(plan.knockouts, tiny, device="cpu", reverse_complement=False)
    for k, a, b, f in zip(plan.knockouts, reused, naive, forward, strict=True):
        assert a == pytest.approx(_independent_delta(tiny, k.reference, k.mutant, True), abs=2e-3)
        assert a == pytest.approx(b, abs=2e-3)
        assert f == pytest.approx(_independent_delta(tiny, k.reference, k.mutant, False),
                                  abs=2e-3)
    results = ess.rank(plan.knockouts, reused, plan.skipped)
    assert [r.score for r in results] == sorted(reused)
    assert [r.rank for r in results] == [1, 2]


def test_three_forms_give_the_same_scores(tiny):
    forms = [
        load_annotated_genome(FNA, ANNOTATED / "mycoplasma_subset.gff.gz"),
        load_annotated_genome(ANNOTATED / "mycoplasma_subset.prokka.gff.gz"),
        load_annotated_genome(ANNOTATED / "mycoplasma_subset.gbk.gz"),
    ]
    tables = []
    for form in forms:
        genes = [f for f in form.features_of("CDS") if f.contig == "NZ_JNJU01000009.1" or
                 f.locus_tag in {"T383_RS0102830", "T383_RS0102865", "T383_RS03980"}]
        plan = ko.plan_knockouts(form, genes, window=192, offset=12)
        scores = ess.score_knockouts(plan.knockouts, tiny, device="cpu", reverse_complement=False)
        tables.append([(r.gene.locus_tag, r.score, r.rank, r.note)
                       for r in ess.rank(plan.knockouts, scores, plan.skipped)])
    assert len(tables[0]) == 4 and sum(row[1] is None for row in tables[0]) == 2
    assert tables[0] == tables[1] == tables[2]


# ---------------------------------------------------------------- metrics, labels


def _pairwise_auroc(scores, labels):
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def _brute_average_precision(scores, labels):
    scores, labels = np.asarray(scores), np.asarray(labels, bool)
    total, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores), reverse=True):
        chosen = scores >= threshold
        recall = (chosen & labels).sum() / labels.sum()
        precision = (chosen & labels).sum() / chosen.sum()
        total += (recall - previous_recall) * precision
        previous_recall = recall
    return total


def test_metrics_against_independent_computations():
    rng = np.random.default_rng(7)
    for _ in range(20):
        scores = rng.integers(0, 6, size=30).astype(float)  # many ties
        labels = rng.random(30) < 0.3
        labels[:2] = [True, False]
        assert cm.auroc(scores, labels) == pytest.approx(_pairwise_auroc(scores, labels))
        assert cm.auprc(scores, labels) == pytest.approx(_brute_average_precision(scores, labels))
    assert cm.auroc([3, 2, 1, 0], [1, 1, 0, 0]) == 1.0
    assert cm.auroc([0, 1, 2, 3], [1, 1, 0, 0]) == 0.0
    fpr, tpr, _ = cm.roc_curve([0.9, 0.8, 0.8, 0.1], [1, 0, 1, 0])
    assert fpr.tolist() == [0, 0, 0.5, 1] and tpr.tolist() == [0, 0.5, 1, 1]
    with pytest.raises(ValueError):
        cm.auroc([1, 2], [1, 1])


def _results(pairs):
    return [ess.RankedGene(Feature("c", i + 1, i + 90, "+", "CDS", locus_tag=tag, old_locus_tag=old,
                               name=name), score, i + 1)
            for i, (tag, old, name, score) in enumerate(pairs)]


def test_labels_formats_and_matching(tmp_path):
    no_header = tmp_path / "a.tsv"
    no_header.write_text("LT1\tE\nOLD2\tNE\ndnaA\t1\nLT4\tfalse\nmissing\ttrue\n")
    labels = label_io.read_labels(no_header)
    assert labels == {"LT1": True, "OLD2": False, "dnaA": True, "LT4": False, "missing": True}
    header = tmp_path / "b.tsv"
    header.write_text("organism\tgene\tessential\nx\tLT1\tyes\nx\tLT4\tno\n")
    assert label_io.read_labels(header) == {"LT1": True, "LT4": False}
    header.write_text("locus_tag\tessential\nLT1\tE\n")  # a header made of label words
    assert label_io.read_labels(header) == {"LT1": True}
    bad = tmp_path / "c.tsv"
    bad.write_text("LT1\tE\nLT4\tmaybe\n")
    with pytest.raises(DnahnetError, match=r"c.tsv: line 2: label 'maybe'"):
        label_io.read_labels(bad)

    results = _results([("LT1", "", "", -9.0), ("LT2", "OLD2", "", -1.0),
                        ("LT3", "", "dnaA", -5.0), ("LT4", "", "", 2.0)])
    matched, unmatched, ambiguous = label_eval.match_labels(labels, results)
    assert [(m[0], m[1], m[2].gene.locus_tag) for m in matched] == [
        ("LT1", "locus_tag", "LT1"), ("OLD2", "old_locus_tag", "LT2"),
        ("dnaA", "gene", "LT3"), ("LT4", "locus_tag", "LT4"),
    ]
    assert unmatched == ["missing"] and ambiguous == []
    report = label_eval.evaluate(labels, results)
    y = [True, False, True, False]
    expected = _pairwise_auroc([9.0, 1.0, 5.0, -2.0], y)
    assert report["auroc"] == pytest.approx(expected) == 1.0
    assert report["auprc"] == pytest.approx(1.0)
    assert (report["n_matched"], report["n_essential"], report["n_nonessential"]) == (4, 2, 2)
    assert report["matched_by"] == {"locus_tag": 2, "old_locus_tag": 1, "gene": 1}
    with pytest.raises(DnahnetError, match="none of the 2 ids matches a gene"):
        label_eval.evaluate({"zzz": True, "yyy": False}, results, source="labels.tsv")


# ---------------------------------------------------------------- CLI


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "dnahnet_cli", "essentiality", *map(str, args)],
        capture_output=True, text=True, cwd=cwd,
        # the repo first, then any install folder already on the path (a GPU check's site)
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
             "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                         os.environ.get("PYTHONPATH")]))},
    )


def test_cli_ranking_labels_metrics_plot(tmp_path):
    labels = tmp_path / "labels.tsv"
    labels.write_text("locus_tag\tessential\nLEP1GSC081_RS208775\tE\nLEP1GSC081_1313\tNE\n"
                      "LEP1GSC081_RS0208190\tE\nnot_a_gene\tNE\n")
    out = tmp_path / "rank.tsv"
    run = _cli(ANNOTATED / "leptospira_subset.gbk.gz", "--model", "dnahnet-tiny",
               "--window", "128", "--no-reverse-complement", "-o", out, "--labels", labels,
               "--plot", tmp_path / "roc.png", "--device", "cpu", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert rows[0] == tsv.RANKING_COLUMNS
    scored = [r for r in rows[1:] if r[8]]
    assert [int(r[8]) for r in scored] == list(range(1, len(scored) + 1))
    assert [float(r[7]) for r in scored] == sorted(float(r[7]) for r in scored)
    assert any(r[9] == "skipped: pseudogene" for r in rows[1:])
    report = json.loads((tmp_path / "rank.metrics.json").read_text())
    assert report["unmatched"] == ["not_a_gene"]
    assert report["matched_not_scored"] == ["LEP1GSC081_RS0208190"]  # pseudogene
    assert report["n_scored"] == 2 and report["auroc"] in (0.0, 1.0)
    assert (tmp_path / "roc.png").stat().st_size > 1000
    assert "AUROC" in run.stderr and "genes/s" in run.stderr


def test_cli_errors_leave_no_output(tmp_path):
    labels = tmp_path / "labels.tsv"
    labels.write_text("b0001\tE\nb0002\tNE\n")
    out = tmp_path / "rank.tsv"
    run = _cli(ANNOTATED / "leptospira_subset.gbk.gz", "--model", "dnahnet-tiny",
               "-o", out, "--labels", labels, "--device", "cpu", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.startswith("dnahnet: error: ") and "labels.tsv" in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [labels]
