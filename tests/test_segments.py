"""`dnahnet segments`: tiles, stitched predictions, chunk composition, BED/bedGraph output."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dnahnet_core.alphabet import encode
from dnahnet_core.io.tracks import iter_segments_bed, segments_bed
from dnahnet_core.tasks.segments import ContigSegments, chunk_intervals, segment_contig
from dnahnet_core.tasks.windows import plan_tiles

RNG = np.random.default_rng(7)


def random_dna(n: int, seed: int = 0) -> str:
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), n))


# ---------------------------------------------------------------- window plan


@pytest.mark.parametrize(
    "length, context, stride",
    [
        (1, 16, 8),
        (24, 16, 8),
        (25, 16, 8),
        (100, 16, 8),
        (101, 16, 7),
        (1000, 256, 100),
        (50, 0, 5),
    ],
)
def test_windows_keep_every_base_once_with_the_promised_left_context(length, context, stride):
    windows = plan_tiles(length, context, stride)
    kept = np.zeros(length, dtype=int)
    for w in windows:
        assert 0 <= w.start <= w.keep_start < w.keep_end <= w.end <= length
        assert w.keep_end == w.end  # a window keeps its right part
        kept[w.keep_start : w.keep_end] += 1
        left = np.arange(w.keep_start, w.keep_end) - w.start
        assert (left >= np.minimum(np.arange(w.keep_start, w.keep_end), context)).all()
    assert (kept == 1).all()
    assert windows[0].start == 0 and windows[0].keep_start == 0
    if length <= context + stride:
        assert len(windows) == 1 and windows[0].end == length
    else:  # uniform windows: batches need no padding
        assert {w.end - w.start for w in windows} == {context + stride}


# ---------------------------------------------------------------- a test double for tiling


class ContextProbe(torch.nn.Module):
    """Test double of a DnaLM, only for the tiling logic (same output shapes).

    Stage 1: a causal function of x_t and x_{t-1} (0 before the window's first base).
    Stage 2: how much left context position t had inside its window, min(t, K) / K,
    so stitched values equal min(p, K) / K exactly when every base p of the contig
    was predicted with at least min(p, K) nt of left context.
    """

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.config = SimpleNamespace(num_stages=2)
        self.calls: list[tuple[int, int]] = []

    def forward(self, tokens, mask=None):
        b, n = tokens.shape
        self.calls.append((b, n))
        x = tokens.float()
        prev = torch.nn.functional.pad(x, (1, 0))[:, :-1]
        p1 = ((x + 2 * prev) % 5) / 4
        steps = torch.arange(n, dtype=torch.float32, device=tokens.device)
        p2 = (torch.clamp(steps, max=self.k) / self.k).expand(b, n)
        m1 = p1 >= 0.5
        stages = [
            SimpleNamespace(boundary_prob=p1, boundary_mask=m1),
            SimpleNamespace(boundary_prob=p2, boundary_mask=m1 & (p2 >= 0.5)),
        ]
        return SimpleNamespace(logits=torch.zeros(b, n, 5, device=tokens.device), stages=stages)

    def boundaries(self, tokens, mask=None, depth=None):  # what segments calls
        return self.forward(tokens, mask).stages[:depth], None


@pytest.mark.parametrize("length", [1, 300, 4096 + 1, 5000])
def test_stitched_bases_all_have_the_promised_left_context(length):
    context, stride = 256, 128
    probe = ContextProbe(k=context)
    seq = random_dna(length, seed=length)
    seg = segment_contig(probe, "ctg", seq, context=context, stride=stride, batch_size=4)
    calls = list(probe.calls)
    positions = np.arange(length)
    np.testing.assert_array_equal(seg.prob[1], np.minimum(positions, context) / context)
    # stage 1 needs one base of context: identical to one pass over the whole contig
    whole = probe(torch.from_numpy(encode(seq).astype(np.int64))[None])
    np.testing.assert_array_equal(seg.prob[0], whole.stages[0].boundary_prob[0].cpu().numpy())
    assert seg.mask[:, 0].all()
    if length > context + stride:  # memory is bounded by one batch of fixed-size windows
        assert {n for _, n in calls} == {context + stride}
        assert max(b for b, _ in calls) <= 4


def test_stage_selection_and_errors():
    probe = ContextProbe(k=8)
    seg = segment_contig(probe, "c", "ACGTACGTAA", stages=[2], context=4, stride=4)
    assert seg.stages == [2] and seg.prob.shape == (1, 10)
    from dnahnet_core.errors import DnahnetError

    with pytest.raises(DnahnetError, match="--stage 3: the model has 2 stage"):
        segment_contig(probe, "c", "ACGTACGTAA", stages=[3], context=4, stride=4)


# ---------------------------------------------------------------- chunks and composition


def _model_composition(stage1_nt, inner_mask, inner_prob):
    """The model's own stage composition (DnaLM._stage_stats) on hand-made routing.

    Model coordinates carry BOS at position 0, always a boundary, so stage 1 sees BOS +
    the nucleotides and stage 2 sees the BOS chunk + one entry per stage-1 chunk.
    """
    from dnahnet_core.model import build_model, load_config
    from dnahnet_core.model.hnet import RawStageStats

    b1 = torch.tensor([[True, *stage1_nt]])
    p1 = torch.where(b1, 0.8, 0.1).float()
    b2 = torch.tensor([[True, *inner_mask]])
    p2 = torch.tensor([[1.0, *inner_prob]])
    raw = [
        RawStageStats(p1, b1, torch.ones_like(b1), 3.0),
        RawStageStats(p2, b2, torch.ones_like(b2), 2.0),
    ]
    model = build_model(load_config("dnahnet-tiny"))
    stages, _ = model._stage_stats(raw, drop_first=True)
    return stages[1].boundary_mask[0].numpy(), stages[1].boundary_prob[0].numpy()


def test_stage2_composition_through_stage1_by_hand():
    # 10 nt; stage-1 boundaries at 0, 3, 5, 6, 9 -> stage-1 chunks [0,3) [3,5) [5,6) [6,9) [9,10)
    stage1 = np.array([1, 0, 0, 1, 0, 1, 1, 0, 0, 1], dtype=bool)
    # stage 2 runs over the 5 stage-1 chunks; boundaries at chunks 0, 2, 4
    inner_mask = np.array([1, 0, 1, 0, 1], dtype=bool)
    inner_prob = np.array([0.9, 0.2, 0.7, 0.4, 0.55], dtype=np.float32)
    stage2, prob2 = _model_composition(stage1.tolist(), inner_mask.tolist(), inner_prob.tolist())
    assert np.flatnonzero(stage2).tolist() == [0, 5, 9]
    assert not (stage2 & ~stage1).any()
    starts, ends, scores = chunk_intervals(stage2, prob2)
    assert list(zip(starts.tolist(), ends.tolist(), scores.tolist(), strict=True)) == [
        (0, 5, 900),
        (5, 9, 700),
        (9, 10, 550),
    ]
    prob1 = np.linspace(0, 1, 10).astype(np.float32)
    seg = ContigSegments("c", [1, 2], np.stack([prob1, prob2]), np.stack([stage1, stage2]))
    rows = [line.split("\t") for line in segments_bed(seg).splitlines()]
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("0", "3", "stage1"),
        ("0", "5", "stage2"),
        ("3", "5", "stage1"),
        ("5", "6", "stage1"),
        ("5", "9", "stage2"),
        ("6", "9", "stage1"),
        ("9", "10", "stage1"),
        ("9", "10", "stage2"),
    ]
    assert rows[2][4] == str(round(prob1[3] * 1000)) and all(r[5] == "." for r in rows)
    assert "".join(iter_segments_bed(seg, block=3)) == segments_bed(seg)


def test_chunks_always_start_at_position_zero_and_tile_the_contig():
    mask = np.array([0, 0, 1, 0, 1], dtype=bool)
    prob = np.array([0.1, 0.2, 0.6, 0.0, 1.0], dtype=np.float32)
    starts, ends, scores = chunk_intervals(mask, prob)
    assert starts.tolist() == [0, 2, 4] and ends.tolist() == [2, 4, 5]
    assert scores.tolist() == [100, 600, 1000]
    assert all(x.size == 0 for x in chunk_intervals(np.zeros(0, bool), np.zeros(0)))


# ---------------------------------------------------------------- CLI (real model)


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "dnahnet_cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def tiny():
    from dnahnet_core.model import load_model

    torch.manual_seed(0)
    return load_model("dnahnet-tiny")


def test_a_sequence_within_one_window_is_exactly_the_single_pass(tiny):
    seq = random_dna(500, seed=1)
    seg = segment_contig(tiny, "c", seq, context=256, stride=256, device="cpu")  # as below
    with torch.inference_mode():
        out = tiny(torch.from_numpy(encode(seq).astype(np.int64))[None])
    for row, stage in enumerate(out.stages):
        np.testing.assert_array_equal(seg.prob[row], stage.boundary_prob[0].numpy())
        np.testing.assert_array_equal(seg.mask[row, 1:], stage.boundary_mask[0, 1:].numpy())
    assert seg.mask[:, 0].all()
    # stage 2 is nested in stage 1, and defined (non-zero) only at stage-1 boundaries
    assert not (seg.mask[1] & ~seg.mask[0]).any()
    assert (seg.prob[1][~seg.mask[0]] == 0).all()


def test_seams_carry_the_prediction_of_a_window_with_full_left_context(tiny):
    context, stride = 256, 192
    seq = random_dna(1400, seed=2)
    tokens = encode(seq).astype(np.int64)
    seg = segment_contig(tiny, "c", seq, context=context, stride=stride, batch_size=3,
                          device="cpu")  # where the single passes below run
    windows = plan_tiles(len(seq), context, stride)
    assert len(windows) >= 4
    for w in windows[1:]:
        for p in (w.keep_start, w.keep_start + 1, w.keep_end - 1):
            assert p - w.start >= context
            # the model is causal: the same window cut just after p gives p's value
            with torch.inference_mode():
                out = tiny(torch.from_numpy(tokens[w.start : p + 1])[None])
            for row, stage in enumerate(out.stages):
                assert seg.prob[row, p] == pytest.approx(
                    float(stage.boundary_prob[0, -1]), abs=1e-5
                )
    # and a window with less context would have given something else somewhere
    with torch.inference_mode():
        short = tiny(torch.from_numpy(tokens[windows[1].keep_start - 8 :])[None])
    n = windows[1].keep_end - windows[1].keep_start
    assert not np.allclose(
        short.stages[0].boundary_prob[0, 8 : 8 + n].numpy(),
        seg.prob[0, windows[1].keep_start : windows[1].keep_end],
        atol=1e-4,
    )


def write_fasta(path, records):
    path.write_text("".join(f">{name} test\n{seq}\n" for name, seq in records))
    return path


def bed_rows(text):
    return [line.split("\t") for line in text.splitlines() if not line.startswith("track")]


def test_cli_bed_is_sorted_in_bounds_and_tiles_each_contig_per_stage(tmp_path):
    lengths = {"ctg_b": 700, "Ctg_a": 1300, "ctg_10": 40}
    fasta = write_fasta(tmp_path / "g.fa", [(n, random_dna(k, seed=k)) for n, k in lengths.items()])
    out = tmp_path / "chunks.bed"
    graph = tmp_path / "probs.bedgraph"
    result = run_cli(
        "segments",
        fasta,
        "--model",
        "dnahnet-tiny",
        "--context",
        256,
        "--stride",
        256,
        "--bedgraph",
        graph,
        "-o",
        out,
        "--track",
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.startswith("track ") and text.count("track ") == 1
    rows = bed_rows(text)
    assert all(len(r) == 6 and r[5] == "." for r in rows)
    keys = [(r[0].encode(), int(r[1])) for r in rows]
    assert keys == sorted(keys)
    assert [r[0] for r in rows][0] == "Ctg_a"
    for name, length in lengths.items():
        for stage in ("stage1", "stage2"):
            chunks = [
                (int(r[1]), int(r[2]), int(r[4])) for r in rows if r[0] == name and r[3] == stage
            ]
            assert chunks[0][0] == 0 and chunks[-1][1] == length
            assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))
            assert all(s < e and 0 <= c <= 1000 for s, e, c in chunks)
        stage1 = {int(r[1]) for r in rows if r[0] == name and r[3] == "stage1"}
        stage2 = {int(r[1]) for r in rows if r[0] == name and r[3] == "stage2"}
        assert stage2 <= stage1 and len(stage2) < len(stage1)
    assert not graph.exists()
    for stage in (1, 2):
        lines = (tmp_path / f"probs.stage{stage}.bedgraph").read_text().splitlines()
        assert lines[0].startswith("track type=bedGraph")
        cells = [line.split("\t") for line in lines[1:]]
        assert [c[0] for c in cells] == sorted((c[0] for c in cells), key=str.encode)
        for name, length in lengths.items():
            runs = [(int(c[1]), int(c[2]), float(c[3])) for c in cells if c[0] == name]
            assert runs[0][0] == 0 and runs[-1][1] == length
            assert all(a[1] == b[0] and a[2] != b[2] for a, b in zip(runs, runs[1:], strict=False))
            assert all(0.0 <= v <= 1.0 for _, _, v in runs)
            # the BED score is the bedGraph value at the chunk start, x 1000
            value_at = {}
            for s, e, v in runs:
                for p in range(s, e):
                    value_at[p] = v
            for r in rows:
                if r[0] == name and r[3] == f"stage{stage}":
                    assert abs(int(r[4]) - value_at[int(r[1])] * 1000) <= 1


def test_cli_stdout_is_clean_bed(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", [("only", random_dna(300, seed=5)), ("empty", "")])
    result = run_cli("segments", fasta, "--model", "dnahnet-tiny", "--stage", "2", "--context", 128)
    assert result.returncode == 0, result.stderr
    rows = bed_rows(result.stdout)
    assert rows and all(len(r) == 6 and r[3] == "stage2" and r[0] == "only" for r in rows)
    assert int(rows[-1][2]) == 300


def test_cli_errors_leave_no_output(tmp_path):
    bad = tmp_path / "bad.fa"
    bad.write_text(">good\nACGT\n>broken\nACGT!A\n")
    out, graph = tmp_path / "o.bed", tmp_path / "p.bedgraph"
    result = run_cli("segments", bad, "--model", "dnahnet-tiny", "-o", out, "--bedgraph", graph)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "broken" in result.stderr
    assert "Traceback" not in result.stderr
    good = write_fasta(tmp_path / "g.fa", [("x", "ACGT" * 20)])
    result = run_cli(
        "segments", good, "--model", "dnahnet-tiny", "--stage", "3", "-o", out, "--bedgraph", graph
    )
    assert result.returncode == 1 and "--stage 3: the model has 2 stage" in result.stderr
    assert set(tmp_path.iterdir()) == {bad, good}
