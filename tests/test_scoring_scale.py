"""Genome-scale scoring (issue 12): batching and worker processes give the single-process
scores; the opt-in approximations (--downstream, --genome-stream) equal the exact protocol
when unbounded and follow their definitions when bounded; an allele longer than the window
is scored at its left breakpoint at a bounded cost. Real genome windows, tiny model."""

from __future__ import annotations

import gzip
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from dnahnet_core.alphabet import decode, encode, reverse_complement_tokens
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.annotations import load_annotated_genome
from dnahnet_core.io.fasta import load_genome
from dnahnet_core.io.genome import Genome
from dnahnet_core.io.vcf import VcfReader
from dnahnet_core.model import build_model, load_config
from dnahnet_core.tasks.engine import (
    Engine,
    ModelWorkers,
    Substitution,
    check_scoring_options,
    sequence_log_likelihoods,
    stitched_predictions,
    stream_substitutions,
)
from dnahnet_core.tasks.essentiality import score_knockouts, stream_knockouts
from dnahnet_core.tasks.knockouts import plan_knockouts
from dnahnet_core.tasks.variants import ScoreOptions, Summary, plan_chunks, score_vcf

DEMO = Path(__file__).resolve().parent.parent / "dnahnet_core" / "demo_data"
CONTIG = "NZ_JNJU01000001.1"  # 264,665 nt
SMALL = "NZ_JNJU01000008.1"  # 2,683 nt, 4 CDS on the + strand
W = 256


@pytest.fixture(scope="module")
def model():
    return build_model(load_config("dnahnet-tiny"), seed=0).eval()


@pytest.fixture(scope="module")
def contig():
    return encode(load_genome(DEMO / "mycoplasma_alvi.fna.gz")[CONTIG])


@pytest.fixture(scope="module")
def sites():
    """Sites as score-variants plans them (windows, changed ranges): the bundled demo VCF
    (SNVs, an MNV, insertions, deletions) on the Mycoplasma genome, W-nt windows."""
    genome = Genome.read(DEMO / "mycoplasma_alvi.fna.gz")
    reader = VcfReader(DEMO / "demo_variants.vcf")
    chunks = plan_chunks(reader, genome, ScoreOptions(window=W), Summary(), 1000)
    planned = [site for _, chunk in chunks for site in chunk]
    for i, site in enumerate(planned):
        site.key = i
    assert len(planned) > 30
    return planned


@pytest.fixture(scope="module")
def mycoplasma():
    return load_annotated_genome(DEMO / "mycoplasma_alvi.fna.gz", DEMO / "mycoplasma_alvi.gff.gz")


def _kind(site) -> str:
    (ref_start, ref_end), (alt_start, alt_end) = site.changed[:2]
    ref, alt = ref_end - ref_start, alt_end - alt_start
    return "snv" if ref == alt == 1 else "mnv" if ref == alt else (
        "insertion" if alt > ref else "deletion")


def _assert_same(a, b, atol=1e-5):
    assert [s.key for s in a] == [s.key for s in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.forward, y.forward, rtol=0, atol=atol)
        np.testing.assert_allclose(x.reverse, y.reverse, rtol=0, atol=atol)
        np.testing.assert_allclose(x.reference_ll, y.reference_ll, rtol=0, atol=atol)


def _ctrl_c_blocked(model):
    return signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set())


def test_workers_leave_ctrl_c_to_this_process(model):
    """A terminal's Ctrl-C reaches the workers too (one process group); this process
    handles it and ends the pool."""
    assert not _ctrl_c_blocked(model)
    with ModelWorkers(model, 2) as pool:
        assert not _ctrl_c_blocked(model)  # here, once the workers have started
        assert list(pool.map(_ctrl_c_blocked, [(), ()])) == [True, True]


def test_batches_and_workers_give_the_single_process_scores(model, sites, contig):
    single = list(Engine(model, "cpu", batch_size=1, reverse_complement=True).score(sites))
    batched = list(Engine(model, "cpu", batch_size=6, reverse_complement=True).score(sites))
    _assert_same(batched, single)
    tokens = contig[30000:33000]
    substitutions = [Substitution(p, encode("TAATAA"), p) for p in (150, 900, 1700, 2500)]
    with ModelWorkers(model, 2) as pool:
        with Engine(model, "cpu", reverse_complement=True, workers=pool, chunk_sites=3) as engine:
            parallel = list(engine.score(iter(sites)))  # a stream, read as results come
        _assert_same(parallel, single)
        tiled = stitched_predictions(model, tokens, context=500, stride=700, batch_size=2,
                                     device="cpu", workers=pool)
        streamed = stream_substitutions(model, tokens, substitutions, tile=1200, downstream=300,
                                        device="cpu", workers=pool)
    alone = stitched_predictions(model, tokens, context=500, stride=700, batch_size=2,
                                 device="cpu")
    np.testing.assert_allclose(tiled.log_probs, alone.log_probs, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(tiled.boundary_mask, alone.boundary_mask)
    routed = stitched_predictions(model, tokens, context=500, stride=700, batch_size=2,
                                  device="cpu", boundaries_only=True)  # what segments runs
    assert routed.log_probs is None
    np.testing.assert_array_equal(routed.boundary_mask, alone.boundary_mask)
    np.testing.assert_array_equal(routed.boundary_prob, alone.boundary_prob)
    here = stream_substitutions(model, tokens, substitutions, tile=1200, downstream=300,
                                device="cpu")
    assert [s.key for s in streamed] == [s.key for s in substitutions]
    np.testing.assert_allclose([s.delta for s in streamed], [s.delta for s in here], atol=1e-5)


def test_downstream_at_least_the_window_is_the_exact_protocol(model, sites):
    exact = list(Engine(model, "cpu", reverse_complement=True).score(sites))
    bounded = list(Engine(model, "cpu", reverse_complement=True, downstream=W).score(sites))
    _assert_same(bounded, exact, atol=0)


@pytest.mark.parametrize("kind", ["snv", "mnv", "insertion", "deletion"])
def test_downstream_sums_n_positions_after_the_change(model, sites, kind):
    """Direct definition: full forwards of every window, each summed over the same number
    of positions, up to N nt after the longest changed range (reverse strand: N nt past
    the changed ranges' start in reverse-complement order)."""
    n = 17
    site = next(s for s in sites if _kind(s) == kind)
    got = next(Engine(model, "cpu", reverse_complement=True, downstream=n).score([site]))
    alleles = [site.reference, *site.alternatives]

    def totals(windows, stops):
        with torch.inference_mode():
            return [
                model.log_probs(torch.from_numpy(w.astype(np.int64))[None])[0].double()[:s].sum()
                for w, s in zip(windows, stops, strict=True)
            ]

    end = max(end for _, end in site.changed)
    start = min(start for start, _ in site.changed)
    assert len({len(a) for a in alleles}) == 1  # the windows have equal lengths
    forward = totals(alleles, [end + n] * len(alleles))
    flipped = [reverse_complement_tokens(a) for a in alleles]
    reverse = totals(flipped, [len(a) - start + n for a in alleles])
    np.testing.assert_allclose(got.forward, [float(f - forward[0]) for f in forward[1:]], atol=2e-3)
    np.testing.assert_allclose(got.reverse, [float(r - reverse[0]) for r in reverse[1:]], atol=2e-3)
    exact = next(Engine(model, "cpu", reverse_complement=True).score([site]))
    assert np.abs(got.forward - exact.forward).max() > 1e-3  # bounded really differs


def test_stream_follows_its_stretches(model, contig):
    """Each substitution: left context from its stretch's start, mutant vs reference summed
    over the replacement and ``downstream`` nt; unbounded, the whole-sequence LLR."""
    tokens = contig[40000:42000]
    cassette = encode("TAATAATAATAGTGA")
    subs = [Substitution(p, cassette, p) for p in (100, 700, 1300, 1500)]
    mutants = []
    for s in subs:
        mutant = tokens.copy()
        mutant[s.start : s.start + 15] = cassette
        mutants.append(mutant)
    whole = stream_substitutions(model, tokens, subs, tile=8000, downstream=4000, device="cpu")
    totals = sequence_log_likelihoods(model, [tokens, *mutants], "cpu")
    rc = sequence_log_likelihoods(model, [reverse_complement_tokens(t) for t in [tokens, *mutants]],
                                  "cpu")
    for s, m, r, score in zip(subs, totals[1:], rc[1:], whole, strict=True):
        assert score.key == s.key
        np.testing.assert_allclose(score.forward, m - totals[0], atol=2e-3)
        np.testing.assert_allclose(score.reverse, r - rc[0], atol=2e-3)
    # tile 800: a stretch starts 200 nt before its first substitution (not before 0) and
    # holds those starting within 800 nt of its start: [0: 100, 700], [1100: 1300, 1500]
    bounded = stream_substitutions(model, tokens, subs, tile=800, downstream=60,
                                   reverse_complement=False, device="cpu")
    for s, m, offset, score in zip(subs, mutants, (0, 0, 1100, 1100), bounded, strict=True):
        stop = s.start + 15 + 60
        with torch.inference_mode():
            ll = model.log_probs(torch.from_numpy(np.stack([tokens[offset:stop], m[offset:stop]])
                                                  .astype(np.int64))).double().numpy()
        expected = ll[1, s.start - offset :].sum() - ll[0, s.start - offset :].sum()
        np.testing.assert_allclose(score.forward, expected, atol=2e-3)
        assert score.reverse is None


def test_stream_indels_and_alleles_sharing_a_start(model, contig):
    """Three SNVs at one position (one batch from one state), a deletion and an insertion:
    one stretch whose downstream reaches the end gives each the LLR of the mutant and the
    reference cut to the shorter of their lengths (equal numbers of positions, like the
    windowed protocol), on both strands."""
    tokens = contig[50000:51800]
    ref = int(tokens[300])
    subs = [Substitution(300, np.array([b], dtype=np.uint8), ("snv", b))
            for b in range(4) if b != ref]
    subs += [Substitution(800, tokens[800:801].copy(), "del", length=6),
             Substitution(1300, encode("ACGTTGCA"), "ins", length=1)]
    mutants = [np.concatenate([tokens[: s.start], s.replacement, tokens[s.start + s.span :]])
               for s in subs]
    whole = stream_substitutions(model, tokens, subs, tile=8000, downstream=4000, device="cpu")
    assert [score.key for score in whole] == [s.key for s in subs]
    for mutant, score in zip(mutants, whole, strict=True):
        cut = min(len(mutant), len(tokens))
        for strand, got in ((lambda t: t, score.forward), (reverse_complement_tokens,
                                                           score.reverse)):
            pair = [strand(mutant)[:cut], strand(tokens)[:cut]]
            mutant_ll, reference_ll = sequence_log_likelihoods(model, pair, "cpu")
            np.testing.assert_allclose(got, mutant_ll - reference_ll, atol=2e-3)
    assert len({round(score.forward, 3) for score in whole[:3]}) == 3  # three different SNVs


def test_score_variants_genome_stream(model, tmp_path):
    """score-variants --genome-stream: plain records get the stream's scores (two ALTs of
    one record, a deletion), a REF mismatch keeps the windowed protocol's score, and the
    header says how it was scored."""
    genome = Genome.read(DEMO / "mycoplasma_alvi.fna.gz")
    seq = genome.sequence(SMALL)
    alts = [b for b in "GCTA" if b != seq[600]][:2]
    wrong = "A" if seq[1999] != "A" else "C"
    vcf = tmp_path / "in.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        f"{SMALL}\t601\tsnv\t{seq[600]}\t{','.join(alts)}\t.\t.\t.\n"
        f"{SMALL}\t1201\tdel\t{seq[1200:1204]}\t{seq[1200]}\t.\t.\t.\n"
        f"{SMALL}\t2000\tmismatch\t{wrong}\tT\t.\t.\t.\n"
    )

    def llrs(name, **options):
        out = tmp_path / name
        summary = score_vcf(vcf, DEMO / "mycoplasma_alvi.fna.gz", out, model, device="cpu",
                            options=ScoreOptions(window=W, downstream=40, **options))
        assert summary.scored == 4 and summary.ref_mismatches == 1
        rows = [line.split("\t") for line in out.read_text().splitlines()]
        head = rows[0]
        return {(int(r[head.index("pos")]) - 1, r[head.index("alt")]):
                float(r[head.index("llr")]) for r in rows[1:]}

    streamed, windowed = llrs("s.tsv", genome_stream=True), llrs("w.tsv")
    subs = [Substitution(600, encode(a), (600, a)) for a in alts]
    subs.append(Substitution(1200, encode(seq[1200]), (1200, seq[1200]), length=4))
    for score in stream_substitutions(model, genome.tokens(SMALL), subs, tile=W,
                                      downstream=40, device="cpu"):
        assert abs(streamed[score.key] - score.delta) < 2e-4  # the TSV rounds to 1e-4
        assert abs(streamed[score.key] - windowed[score.key]) > 1e-3  # not the windowed one
    assert streamed[(1999, "T")] == windowed[(1999, "T")]
    score_vcf(vcf, DEMO / "mycoplasma_alvi.fna.gz", tmp_path / "s.vcf", model, device="cpu",
              options=ScoreOptions(window=W, genome_stream=True))
    assert (f"##dnahnet_scoring=window={W};reverse_complement=true;circular=false;"
            f"downstream={W // 2};precision=fp32;genome_stream=true"
            in (tmp_path / "s.vcf").read_text())


def test_genome_stream_unbounded_equals_the_windowed_protocol(model, mycoplasma):
    """On a linear contig, windows larger than twice the contig are the whole contig, and a
    stream whose first stretch holds every gene and whose downstream reaches the end is the
    same computation: equal scores."""
    genes = [g for g in mycoplasma.features_of("CDS") if g.contig == SMALL]
    window = 1 << 14  # > 4 x 2,683 nt: one stretch from 0 holds every cassette
    plan = plan_knockouts(mycoplasma, genes, window=window, offset=12)
    assert len(plan.knockouts) == 4
    assert all(k.reference.size == 2683 for k in plan.knockouts)
    exact = score_knockouts(plan.knockouts, model, device="cpu")
    streamed = stream_knockouts(plan.knockouts, plan.genome, model, window=window,
                                downstream=window, device="cpu")
    np.testing.assert_allclose(streamed, exact, atol=2e-3)


def test_genome_stream_circular_wraps_the_origin(model, mycoplasma):
    genes = [g for g in mycoplasma.features_of("CDS") if g.contig == SMALL]
    plan = plan_knockouts(mycoplasma, genes, window=1024, offset=12, circular=True)
    first = plan.knockouts[0]
    assert first.cassette_genomic[0] < 1024 // 4  # inside the warm-up of a linear stream
    linear = stream_knockouts(plan.knockouts, plan.genome, model, window=1024, downstream=64,
                              device="cpu")
    circular = stream_knockouts(plan.knockouts, plan.genome, model, window=1024, downstream=64,
                                circular=True, device="cpu")
    # the first gene sees the contig's end as left context only when circular; the others
    # have their full warm-up on the contig either way
    assert abs(linear[0] - circular[0]) > 1e-4
    np.testing.assert_allclose(linear[2:], circular[2:], atol=2e-3)


def test_bad_scoring_options_are_user_errors():
    with pytest.raises(DnahnetError, match="--precision fp16"):
        check_scoring_options("cpu", precision="fp16")
    with pytest.raises(DnahnetError, match="--workers 0"):
        check_scoring_options("cpu", workers=0)
    with pytest.raises(DnahnetError, match="--downstream 0"):
        check_scoring_options("cpu", downstream=0)


def test_alleles_longer_than_the_window_are_scored_at_the_breakpoint(model, contig, tmp_path):
    """A 50-kb deletion and a 20-kb insertion: windows of W nt starting W/2 before POS, the
    LLR of those two windows, flagged and counted; the model sees a few windows' worth of
    positions (bounded cost), never the 50 kb."""
    seq = decode(contig)
    fasta = tmp_path / "ref.fa.gz"
    with gzip.open(fasta, "wt") as handle:
        handle.write(f">{CONTIG}\n{seq}\n")
    dele, ins = 100_000, 180_000  # 0-based REF starts
    inserted = seq[1000:21000]
    vcf = tmp_path / "sv.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        f"{CONTIG}\t{dele + 1}\tdel50k\t{seq[dele : dele + 50_001]}\t{seq[dele]}\t.\t.\t.\n"
        f"{CONTIG}\t{ins + 1}\tins20k\t{seq[ins]}\t{seq[ins] + inserted}\t.\t.\t.\n"
    )
    positions = []
    hook = model.register_forward_pre_hook(lambda _m, args: positions.append(args[0].numel()))
    try:
        summary = score_vcf(vcf, fasta, tmp_path / "out.tsv", model, device="cpu",
                            options=ScoreOptions(window=W))
    finally:
        hook.remove()
    assert summary.long_alleles == 2 and summary.scored == 2
    assert sum(positions) <= 2 * 2 * 2 * W  # 2 records x 2 strands x (REF + ALT) windows
    rows = [line.split("\t") for line in (tmp_path / "out.tsv").read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    llr = {r[header.index("pos")]: float(r[header.index("llr")]) for r in rows}
    flags = {r[header.index("pos")]: r[header.index("flags")] for r in rows}
    assert all("LONG_ALLELE" in f for f in flags.values())
    for start, ref_len, alt in ((dele, 50_001, seq[dele]), (ins, 1, seq[ins] + inserted)):
        left = start - W // 2
        ref_window = encode(seq[left : left + W])
        alt_window = encode((seq[left:start] + alt + seq[start + ref_len :])[:W])
        windows = [ref_window, alt_window]
        windows += [reverse_complement_tokens(w) for w in windows]
        t = sequence_log_likelihoods(model, windows, "cpu")
        expected = ((t[1] - t[0]) + (t[3] - t[2])) / 2
        assert abs(llr[str(start + 1)] - expected) < 2e-3


def test_cli_genome_stream_and_option_errors(tmp_path):
    """The opt-in flags through the command line: the stream ranks every gene (lowest
    score first) and reports genes/s; a bad --precision is one error line, no output."""
    import subprocess
    import sys

    out = tmp_path / "ranking.tsv"
    cmd = [
        sys.executable, "-m", "dnahnet_cli", "essentiality",
        str(DEMO / "phage_vt2_sakai.fna.gz"), str(DEMO / "phage_vt2_sakai.gff.gz"),
        "--config", "dnahnet-tiny", "--window", "512", "--genome-stream", "--downstream", "64",
        "--device", "cpu", "-o", str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "essentiality: 83 CDS scored" in done.stderr and "genes/s" in done.stderr
    rows = out.read_text().splitlines()
    assert len(rows) == 1 + 83
    scores = [float(r.split("\t")[rows[0].split("\t").index("score")]) for r in rows[1:]]
    assert np.all(np.isfinite(scores)) and scores == sorted(scores)
    cmd[cmd.index("-o") + 1] = str(tmp_path / "bad.tsv")
    done = subprocess.run(cmd + ["--precision", "fp16"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "dnahnet: error: --precision fp16: expected one of fp32, bf16"
    ]
    assert not (tmp_path / "bad.tsv").exists()


def test_cli_score_variants_genome_stream(tmp_path):
    """The flag through the command line: every demo record scored, the header records the
    stream and its downstream."""
    import subprocess
    import sys

    out = tmp_path / "scored.vcf"
    done = subprocess.run(
        [sys.executable, "-m", "dnahnet_cli", "score-variants", str(DEMO / "demo_variants.vcf"),
         "--reference", str(DEMO / "mycoplasma_alvi.fna.gz"), "--config", "dnahnet-tiny",
         "--window", "512", "--genome-stream", "--downstream", "64", "--device", "cpu",
         "-o", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "downstream=64;precision=fp32;genome_stream=true" in text
    records = [line for line in text.splitlines() if not line.startswith("#")]
    expected = [line for line in (DEMO / "demo_variants.vcf").read_text().splitlines()
                if not line.startswith("#")]
    assert len(records) == len(expected)
    assert all("DNAHNET_LLR=" in line for line in records)


def test_boundaries_in_pieces_with_the_state_carried_equal_one_pass(model, contig, monkeypatch):
    """segments' long tiles run the encoders and routers in pieces: the same boundaries as
    one pass, also where a piece selects no stage-2 chunk (pieces of 5 nt)."""
    import dnahnet_core.tasks.engine as engine

    tokens = torch.from_numpy(contig[40000:43000].astype(np.int64))[None]
    whole = torch.ones_like(tokens, dtype=torch.bool)
    with torch.inference_mode():
        one_pass, _ = model.boundaries(tokens)
        for piece in (5, 999):
            monkeypatch.setattr(engine, "STREAM_PIECE", piece)
            pieces = engine._routed_in_pieces(model, tokens, whole)
            for stage, (prob, mask) in zip(one_pass, pieces, strict=True):
                np.testing.assert_allclose(prob.numpy(), stage.boundary_prob.numpy(), atol=1e-5)
                assert torch.equal(mask, stage.boundary_mask)
    assert 0 < one_pass[1].boundary_mask.float().mean() < 1
    outer, _ = model.boundaries(tokens, depth=1)  # segments --stage 1: no inner encoder
    assert len(outer) == 1 and torch.equal(outer[0].boundary_mask, one_pass[0].boundary_mask)


def test_segments_of_a_genome_keep_contig_order_across_workers(model):
    """The tiles of all contigs are one task stream: workers give the one-process
    boundaries, every contig in byte order of its name, empty records skipped."""
    from dnahnet_core.tasks.segments import segment_genome

    genome = load_genome(DEMO / "mycoplasma_alvi.fna.gz")
    small = {name: seq[:1500] for name, seq in sorted(genome.items())[:5]}
    small["empty"] = ""
    options = dict(context=300, stride=400, batch_size=2, device="cpu")
    alone = list(segment_genome(model, small, **options))
    with ModelWorkers(model, 2) as pool:
        parallel = list(segment_genome(model, small, workers=pool, **options))
    assert [s.name for s in alone] == sorted(n for n in small if small[n])
    assert [s.name for s in parallel] == [s.name for s in alone]
    for a, b in zip(alone, parallel, strict=True):
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_allclose(a.prob, b.prob, atol=1e-5)


def test_the_default_stride_gives_the_boundaries_of_stride_context():
    """segments' default (long tiles, each base computed once) against tiles of stride =
    context (each base about twice), shipped model, 60 kb of a real genome: the same
    stage-1 calls, probabilities within 2e-3, and a call differs only where its
    probability is that close to the 0.5 threshold (docs/segments.md has the
    whole-genome agreement)."""
    from dnahnet_core.model import load_model
    from dnahnet_core.tasks.segments import DEFAULT_STRIDE, segment_genome

    genome = load_genome(DEMO / "mycoplasma_alvi.fna.gz")
    region = {CONTIG: genome[CONTIG][100_000:160_000]}
    shipped = load_model(None).eval()
    (default,) = segment_genome(shipped, region, context=8192, device="cpu", batch_size=1)
    (tiled,) = segment_genome(shipped, region, context=8192, stride=8192, device="cpu",
                              batch_size=1)
    assert DEFAULT_STRIDE > len(region[CONTIG])  # one tile, run in pieces
    assert (default.mask[0] != tiled.mask[0]).mean() <= 1e-4
    np.testing.assert_allclose(default.prob, tiled.prob, atol=2e-3)
    flipped = default.mask != tiled.mask
    assert flipped.mean() <= 1e-2
    assert np.abs(default.prob[flipped] - 0.5).max(initial=0) <= 2e-3
