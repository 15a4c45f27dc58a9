"""BED6 / bedGraph writing and BED reading (dnahnet_core.io.tracks)."""

from __future__ import annotations

import numpy as np
import pytest

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.tracks import (
    bed_track_line,
    bedgraph_paths,
    bedgraph_runs,
    bedgraph_track_line,
    contig_sort_key,
    format_bed6,
    format_bedgraph,
    iter_bedgraph,
    read_bed,
)


def test_bedgraph_merges_runs_of_equal_rounded_values_and_covers_every_base():
    values = np.array([0.1, 0.1, 0.10001, 0.5, 0.5, 0.0, 0.0, 0.0, 1.0], dtype=np.float32)
    text = format_bedgraph("chr", values)
    rows = [line.split("\t") for line in text.splitlines()]
    assert [(int(r[1]), int(r[2]), float(r[3])) for r in rows] == [
        (0, 3, 0.1), (3, 5, 0.5), (5, 8, 0.0), (8, 9, 1.0)
    ]
    # rebuilding per-base values from the runs gives the rounded input back
    rebuilt = np.concatenate([[float(r[3])] * (int(r[2]) - int(r[1])) for r in rows])
    np.testing.assert_allclose(rebuilt, np.round(values, 4))


def test_bedgraph_in_blocks_is_the_same_text():
    values = np.random.default_rng(3).integers(0, 3, 50) / 2
    blocks = list(iter_bedgraph("c", values, block=4))
    assert len(blocks) > 3 and all(b.count("\n") <= 4 for b in blocks)
    assert "".join(blocks) == format_bedgraph("c", values)


def test_bedgraph_runs_of_empty_and_constant_tracks():
    starts, ends, vals = bedgraph_runs(np.zeros(0))
    assert starts.size == ends.size == vals.size == 0
    starts, ends, vals = bedgraph_runs(np.full(7, 0.25))
    assert starts.tolist() == [0] and ends.tolist() == [7] and vals.tolist() == [0.25]


def test_bed6_lines_have_six_columns_and_round_trip_through_read_bed(tmp_path):
    text = format_bed6(
        "ctg", np.array([0, 5]), np.array([5, 9]), ["stage1", "stage2"], np.array([1000, 42])
    )
    path = tmp_path / "x.bed"
    path.write_text(bed_track_line("t", 'a "quoted" desc') + text)
    assert all(len(line.split("\t")) == 6 for line in text.splitlines())
    records = list(read_bed(path))
    assert [(r.contig, r.start, r.end, r.name, r.score) for r in records] == [
        ("ctg", 0, 5, "stage1", 1000), ("ctg", 5, 9, "stage2", 42)
    ]


def test_track_lines_are_single_lines_starting_with_track():
    for line in (bed_track_line("a b", "c"), bedgraph_track_line("a", "b")):
        assert line.startswith("track ") and line.endswith("\n") and line.count("\n") == 1
    assert "type=bedGraph" in bedgraph_track_line("a")
    assert "useScore=1" in bed_track_line("a")


def test_contig_sort_key_is_byte_order_like_lc_all_c_sort():
    names = ["chr10", "chr2", "Chr1", "chr1", "NZ_b", "NZ_a.1", "contig_9"]
    assert sorted(names, key=contig_sort_key) == [
        "Chr1", "NZ_a.1", "NZ_b", "chr1", "chr10", "chr2", "contig_9"
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        ("ctg\t5\n", "line 1: BED needs at least 3"),
        ("track name=x\nctg\tfive\t9\n", "line 2: coordinates or score are not numbers"),
        ("ctg\t9\t5\n", "line 1: invalid interval 9-5"),
        ("# only a comment\n", "no BED intervals"),
    ],
)
def test_read_bed_errors_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.bed"
    path.write_text(content)
    with pytest.raises(DnahnetError, match=message) as error:
        list(read_bed(path))
    assert str(path) in str(error.value)


def test_bedgraph_file_names_per_stage(tmp_path):
    base = tmp_path / "probs.bedgraph"
    assert bedgraph_paths(base, [2]) == {2: base}
    assert bedgraph_paths(base, [1, 2]) == {
        1: tmp_path / "probs.stage1.bedgraph", 2: tmp_path / "probs.stage2.bedgraph"
    }
    assert bedgraph_paths(tmp_path / "p", [1, 2])[2] == tmp_path / "p.stage2.bedgraph"
