"""`dnahnet prepare` on real phage genomes: fragments, filters, dedup, splits, errors."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dnahnet_cli.app import app
from dnahnet_core.alphabet import decode
from dnahnet_core.data import prepare as prepare_module
from dnahnet_core.data.dataset import FragmentDataset
from dnahnet_core.data.prepare import PrepareOptions, prepare
from dnahnet_core.data.splits import split_of
from dnahnet_core.errors import DnahnetError

POOL = Path(__file__).parent / "data" / "pool"
PHAGES = {
    "lambda": POOL / "phage_lambda_NC_001416.1.fna.gz",
    "T4": POOL / "phage_T4_NC_000866.1.fna.gz",
    "phiX174": POOL / "phage_phiX174.fna.gz",
}
# the installed command; from a source tree on PYTHONPATH (scripts/gpu_check.sh) there is none
DNAHNET = Path(sys.executable).parent / "dnahnet"
COMMAND = [str(DNAHNET)] if DNAHNET.exists() else [sys.executable, "-m", "dnahnet_cli"]
SPLITS = ("train", "val", "test")


def sequence_of(path: Path) -> str:
    """Independent reading: the single record of a gzipped FASTA, upper case."""
    with gzip.open(path, "rt") as handle:
        return "".join(line.strip() for line in handle if not line.startswith(">")).upper()


def expected_fragments(seq: str, length: int, keep_tail=False, min_tail=1, max_n=0.1) -> list:
    cuts = [seq[i : i + length] for i in range(0, len(seq), length)]
    cuts = [c for c in cuts if len(c) == length or (keep_tail and len(c) >= min_tail)]
    return [c for c in cuts if c.count("N") <= max_n * len(c)]


def fragments_by_genome(out: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for split in SPLITS:
        ds = FragmentDataset(out, split)
        for i in range(len(ds)):
            found.setdefault(ds.genome_of(i), []).append(decode(ds[i]))
    return found


def split_of_genomes(out: Path) -> dict[str, str]:
    rows = (out / "genomes.tsv").read_text().splitlines()[1:]
    return {row.split("\t")[1]: row.split("\t")[2] for row in rows}


def tree_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def invoke(*args: str):
    return CliRunner().invoke(app, ["prepare", *map(str, args)])


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------- fragments


@pytest.mark.parametrize("keep_tail", [False, True])
def test_fragments_match_an_independent_computation(tmp_path, keep_tail):
    out = tmp_path / "ds"
    options = PrepareOptions(fragment_length=1000, keep_tail=keep_tail, min_tail_length=400)
    manifest = prepare(list(PHAGES.values()), out, options)
    found = fragments_by_genome(out)
    total = 0
    for name, path in PHAGES.items():
        genome_id = path.name.split(".fna")[0]
        want = expected_fragments(sequence_of(path), 1000, keep_tail, 400)
        assert found.get(genome_id, []) == want, name
        total += len(want)
    # lambda 48,502 nt, T4 168,903 nt, phiX174 5,386 nt: 48 + 168 + 5 full windows
    assert total == 221 + (2 if keep_tail else 0)  # tails 502, 903 kept; 386 (< 400) dropped
    counts = manifest["filters"]
    assert counts["windows"] == total and counts["duplicates"] == 0
    assert counts["tails_dropped"] == (1 if keep_tail else 3)
    assert counts["tails_kept"] == (2 if keep_tail else 0)
    assert manifest["tail"]["policy"] == ("keep" if keep_tail else "drop")
    assert sum(s["fragments"] for s in manifest["splits"].values()) == total


def test_every_compression_and_input_form_gives_the_same_fragments(tmp_path):
    text = gzip.decompress(PHAGES["lambda"].read_bytes())
    forms = tmp_path / "forms"
    forms.mkdir()
    (forms / "lambda_plain.fa").write_bytes(text)
    (forms / "lambda_xz.fna.xz").write_bytes(lzma.compress(text))
    (forms / "lambda_bz2.fasta.bz2").write_bytes(bz2.compress(text))
    (forms / "notes.md").write_text("not an input; ignored in directories\n")
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"{PHAGES['lambda']}\n")
    options = PrepareOptions(fragment_length=1000, dedup=False)
    manifest = prepare([forms, listing], tmp_path / "ds", options)
    assert [i["compression"] for i in manifest["inputs"]] == ["bz2", "plain", "xz", "gzip"]
    found = fragments_by_genome(tmp_path / "ds")
    want = expected_fragments(sequence_of(PHAGES["lambda"]), 1000)
    assert len(found) == 4 and all(f == want for f in found.values())
    sha = __import__("hashlib").sha256(PHAGES["lambda"].read_bytes()).hexdigest()
    assert manifest["inputs"][3]["sha256"] == sha
    assert manifest["inputs"][3]["bytes"] == PHAGES["lambda"].stat().st_size
    # a missing path in a list is named with the list and its line; one listed twice counts once
    listing.write_text(f"# genomes\n{PHAGES['lambda']}\n\nnowhere.fa\n")
    with pytest.raises(DnahnetError, match=r"inputs.txt: line 4: .*nowhere.fa: no such file"):
        prepare([listing], tmp_path / "ds2", options)
    listing.write_text(f"{PHAGES['lambda']}\n{PHAGES['lambda']}\n")
    assert len(prepare([listing], tmp_path / "ds3", options)["inputs"]) == 1


def test_n_threshold_case_and_iupac(tmp_path):
    seq = sequence_of(PHAGES["lambda"])[:3000]
    masked = seq[:1000] + seq[1000:1150].lower() + "N" * 100 + seq[1250:2000] + "RYKM" + seq[2004:]
    path = tmp_path / "masked.fa"
    path.write_text(f">m\n{masked}\n")
    manifest = prepare([path], tmp_path / "ds", PrepareOptions(fragment_length=1000))
    found = fragments_by_genome(tmp_path / "ds")["masked"]
    # window 2 has 100 N (10 %: kept), window 3 has 4 N; both within 0.1
    assert found == [seq[:1000], seq[1000:1150] + "N" * 100 + seq[1250:2000], "NNNN" + seq[2004:]]
    strict = prepare(
        [path], tmp_path / "ds2", PrepareOptions(fragment_length=1000, max_n_fraction=0.05)
    )
    assert strict["filters"]["dropped_n"] == 1
    assert manifest["filters"]["dropped_n"] == 0


def test_dedup_catches_reverse_complement_duplicates(tmp_path):
    seq = sequence_of(PHAGES["lambda"])[:5000]
    revcomp = seq[::-1].translate(str.maketrans("ACGT", "TGCA"))
    (tmp_path / "a.fa").write_text(f">a\n{seq}\n")
    (tmp_path / "b.fa").write_text(f">b1\n{revcomp}\n>b2\n{seq[2000:3000]}GGGG\n")
    out = tmp_path / "ds"
    manifest = prepare(
        [tmp_path / "a.fa", tmp_path / "b.fa"], out, PrepareOptions(fragment_length=1000)
    )
    assert manifest["filters"]["duplicates"] == 6  # 5 reverse complements + 1 exact copy
    found = fragments_by_genome(out)
    assert found == {"a": [seq[i : i + 1000] for i in range(0, 5000, 1000)]}
    off = prepare(
        [tmp_path / "a.fa", tmp_path / "b.fa"],
        tmp_path / "nodedup",
        PrepareOptions(fragment_length=1000, dedup=False),
    )
    assert off["filters"]["duplicates"] == 0
    assert sum(s["fragments"] for s in off["splits"].values()) == 11


# ---------------------------------------------------------------- splits


def test_splits_are_by_genome_deterministic_and_reproducible(tmp_path):
    inputs = list(PHAGES.values())
    options = PrepareOptions(fragment_length=500, val_fraction=0.3, test_fraction=0.3, seed=7)
    first = prepare(inputs, tmp_path / "a", options)
    options.workers = 2
    prepare(inputs, tmp_path / "b", options)
    a, b = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "b")
    assert a.keys() == b.keys()
    for name in a:  # identical bytes, whatever the worker count (the manifest's command aside)
        if name != "manifest.json":
            assert a[name] == b[name], name
    again = prepare(inputs, tmp_path / "c", PrepareOptions(**{**options.__dict__, "workers": 1}))
    assert tree_bytes(tmp_path / "c") == a and again == first

    assigned = split_of_genomes(tmp_path / "a")
    for genome, split in assigned.items():
        assert split == split_of(genome, 7, 0.3, 0.3)
    for split in SPLITS:  # each genome's fragments all in its one split
        ds = FragmentDataset(tmp_path / "a", split)
        assert {ds.genome_of(i) for i in range(len(ds))} <= {
            g for g, s in assigned.items() if s == split
        }
    reordered = prepare(inputs[::-1], tmp_path / "d", options)
    assert split_of_genomes(tmp_path / "d") == assigned
    assert reordered["splits"] != {} and len(assigned) == 3


def test_split_of_is_uniform_and_seeded():
    ids = [f"GCF_{i:09d}.1" for i in range(20000)]
    splits = [split_of(g, 0, 0.1, 0.2) for g in ids]
    assert abs(splits.count("val") / len(ids) - 0.1) < 0.01
    assert abs(splits.count("test") / len(ids) - 0.2) < 0.01
    assert splits != [split_of(g, 1, 0.1, 0.2) for g in ids]


# ---------------------------------------------------------------- GTDB metadata

GTDB_HEADER = (
    "accession\tambiguous_bases\tcheckm_completeness\tcheckm_contamination\t"
    "checkm_marker_count\tcheckm_marker_lineage\tcontig_count\tgc_percentage\tgenome_size\t"
    "gtdb_genome_representative\tgtdb_representative\tgtdb_taxonomy\t"
    "ncbi_genbank_assembly_accession\tncbi_organism_name"
)


def gtdb_row(accession, completeness, contamination, representative, size, name):
    return "\t".join(
        [accession, "0", completeness, contamination, "120", "o__Caudovirales (UID1)", "1",
         "50.0", str(size), accession, representative,
         "d__Viruses;p__Uroviricota;c__Caudoviricetes;o__;f__;g__;s__" + name,
         accession.replace("RS_GCF", "GCA")[3:], name]
    )  # fmt: skip


@pytest.fixture
def gtdb(tmp_path):
    genomes = tmp_path / "genomes"
    genomes.mkdir()
    names = {
        "GCF_000840245.1_ViralProj14204_genomic.fna.gz": PHAGES["lambda"],
        "GCF_000836945.1_ViralProj14044_genomic.fna.gz": PHAGES["T4"],
        "GCA_000819615.1_ViralProj14015_genomic.fna.gz": PHAGES["phiX174"],
        "unnamed_phage.fna.gz": PHAGES["phiX174"],
    }
    for name, source in names.items():
        shutil.copy(source, genomes / name)
    table = tmp_path / "bac120_metadata_r214.tsv.gz"
    rows = [
        GTDB_HEADER,
        gtdb_row("RS_GCF_000840245.1", "98.5", "0.3", "t", 48502, "Lambda"),
        gtdb_row("RS_GCF_000836945.1", "99.9", "7.5", "t", 168903, "T4"),  # contaminated
        gtdb_row("RS_GCF_000819615.1", "95.2", "1.1", "f", 5386, "phiX174"),  # GCA<->GCF twin
        gtdb_row("GB_GCA_000000001.1", "50.0", "0.0", "t", 1000, "absent"),
    ]
    table.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    return genomes, table


def test_metadata_filters_select_exactly_the_expected_genomes(gtdb, tmp_path):
    genomes, table = gtdb
    options = PrepareOptions(fragment_length=1000, metadata=[str(table)], skip_bad=True)
    manifest = prepare([genomes], tmp_path / "ds", options)
    assert set(split_of_genomes(tmp_path / "ds")) == {"GCF_000840245.1", "GCA_000819615.1"}
    meta = manifest["filters"]["metadata"]
    assert meta["counts"] == {
        "selected": 2,
        "low_completeness": 0,
        "high_contamination": 1,
        "not_representative": 0,
        "unmatched": 1,
    }
    assert meta["unmatched"] == ["unnamed_phage.fna.gz"]
    assert meta["genomes_in_metadata"] == 4
    assert manifest["filters"]["genomes_excluded_by_metadata"] == 2  # FASTA files count too
    assert {Path(i["path"]).name[:15] for i in manifest["inputs"]} == {
        "GCF_000840245.1",
        "GCA_000819615.1",
    }

    options.representatives_only = True
    options.min_completeness = 97
    options.max_contamination = 10
    manifest = prepare([genomes], tmp_path / "reps", options)
    assert set(split_of_genomes(tmp_path / "reps")) == {"GCF_000840245.1", "GCF_000836945.1"}
    assert manifest["filters"]["metadata"]["counts"]["low_completeness"] == 1  # phiX 95.2


def test_metadata_must_be_gtdb_format(gtdb, tmp_path):
    genomes, _ = gtdb
    bad = tmp_path / "meta.tsv"
    bad.write_text("genome\tcompleteness\nGCF_000840245.1\t99\n")
    result = invoke(genomes, "--out", tmp_path / "ds", "--metadata", bad)
    assert isinstance(result.exception, DnahnetError)
    assert "meta.tsv: not a GTDB metadata table" in str(result.exception)
    result = invoke(genomes, "--out", tmp_path / "ds", "--metadata", tmp_path)
    assert str(result.exception) == f"{tmp_path}: is a directory, not a GTDB metadata table"


# ---------------------------------------------------------------- bad input


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    lam = PHAGES["lambda"].read_bytes()
    cases = {
        "empty": (b"", "empty file"),
        "not_fasta": (b"LOCUS       NC_001416  48502 bp\n", "line 1: not FASTA"),
        "truncated": (lam[: len(lam) // 2], "compressed stream is truncated or corrupt"),
        "duplicate_ids": (b">r1\nACGT\n>r2\nAC\n>r1\nGG\n", "duplicate record id 'r1'"),
    }
    out = {}
    for name, (data, message) in cases.items():
        path = tmp_path / f"{name}.fna.gz"
        path.write_bytes(gzip.compress(data) if name not in ("truncated",) else data)
        out[name] = (path, message)
    out["missing"] = (tmp_path / "nowhere.fa", "no such file or directory")
    return out


@pytest.mark.parametrize("case", ["empty", "not_fasta", "truncated", "duplicate_ids", "missing"])
def test_bad_input_gives_its_message_and_no_output(tmp_path, case):
    path, message = _bad_inputs(tmp_path)[case]
    work = tmp_path / "work"
    work.mkdir()
    result = invoke(PHAGES["lambda"], path, "--out", work / "ds", "--fragment-length", "1000")
    assert result.exit_code != 0
    assert isinstance(result.exception, DnahnetError), result.output
    assert message in str(result.exception) and str(path) in str(result.exception)
    assert not (work / "ds").exists() and leftovers(work) == []


def test_cli_prints_one_line_and_exits_nonzero(tmp_path):
    path, _ = _bad_inputs(tmp_path)["truncated"]
    run = subprocess.run(
        [*COMMAND, "prepare", str(path), "--out", str(tmp_path / "ds")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnahnet: error: ")
    assert str(path) in lines[0] and "truncated" in lines[0] and "Traceback" not in run.stderr
    assert not (tmp_path / "ds").exists()


def test_skip_bad_logs_continues_and_lists_what_was_skipped(tmp_path):
    bad = _bad_inputs(tmp_path)
    out = tmp_path / "ds"
    paths = [PHAGES["lambda"]] + [path for path, _ in bad.values()]
    result = invoke(*paths, "--out", out, "--fragment-length", "1000", "--skip-bad")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    skipped = {Path(s["path"]).name: s["error"] for s in manifest["skipped"]}
    assert set(skipped) == {path.name for path, _ in bad.values()}
    for path, message in bad.values():
        assert message in skipped[path.name]
    assert [Path(i["path"]).name for i in manifest["inputs"]] == [PHAGES["lambda"].name]
    assert "skipping: " in result.output and "skipped: " in (out / "summary.txt").read_text()


def test_an_empty_split_and_a_genome_without_fragments_are_warned_about(tmp_path):
    """Three phages at --val-fraction 0.01 leave val empty (splits go by genome), and
    phiX174 (5,386 nt) gives no 8,192-nt fragment: both said, in the summary and its file."""
    out = tmp_path / "ds"
    result = invoke(*PHAGES.values(), "--out", out, "--val-fraction", "0.01",
                    "--test-fraction", "0")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2, result.output
    assert warnings[0].startswith("warning: the val split is empty: genomes go to splits "
                                  "whole, and 3 genome(s) at --val-fraction 0.01 gave it none")
    assert warnings[1].startswith("warning: 1 genome(s) gave no fragment (shorter than "
                                  "--fragment-length 8192")
    assert warnings[1].endswith("every window filtered): phage_phiX174")  # genome = file
    assert warnings == [line for line in (out / "summary.txt").read_text().splitlines()
                        if line.startswith("warning: ")]
    quiet = invoke(PHAGES["lambda"], "--out", tmp_path / "q", "--val-fraction", "0",
                   "--test-fraction", "0")
    assert quiet.exit_code == 0 and "warning" not in quiet.output  # nothing asked, none missing


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    original = prepare_module._Merger.add

    def add_then_interrupt(self, result):
        calls.append(result)
        if len(calls) == 2:
            raise KeyboardInterrupt
        original(self, result)

    monkeypatch.setattr(prepare_module._Merger, "add", add_then_interrupt)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(KeyboardInterrupt):
        prepare(list(PHAGES.values()), work / "ds", PrepareOptions(fragment_length=1000))
    assert list(work.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = invoke(PHAGES["phiX174"], "--out", out, "--fragment-length", "1000")
    assert "already exists" in str(result.exception)
    assert (out / "keep.txt").read_text() == "mine"
    result = invoke(PHAGES["phiX174"], "--out", out, "--fragment-length", "1000", "--overwrite")
    assert result.exit_code == 0 and not (out / "keep.txt").exists()
    assert len(FragmentDataset(out, split_of_genomes(out)["phage_phiX174"])) == 5


# ---------------------------------------------------------------- tables and inspect


def test_jsonl_and_parquet_sequence_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    seqs = {name: sequence_of(path) for name, path in PHAGES.items()}
    rows = [{"id": name, "text": seq.lower()} for name, seq in seqs.items()]
    jsonl = tmp_path / "opengenome.jsonl.gz"
    jsonl.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    parquet = tmp_path / "genomes.parquet"
    pq.write_table(pa.table({"seq_col": list(seqs.values())}), parquet)
    prepare([jsonl], tmp_path / "j", PrepareOptions(fragment_length=1000, id_field="id"))
    found = fragments_by_genome(tmp_path / "j")
    assert found == {name: expected_fragments(seq, 1000) for name, seq in seqs.items()}
    options = PrepareOptions(fragment_length=1000, sequence_field="seq_col", dedup=False)
    prepare([parquet], tmp_path / "p", options)
    found = fragments_by_genome(tmp_path / "p")
    assert found == {
        f"genomes#{i + 1}": expected_fragments(s, 1000) for i, s in enumerate(seqs.values())
    }
    with pytest.raises(DnahnetError, match=r"genomes.parquet: schema: no sequence column 'nope'"):
        prepare([parquet], tmp_path / "x", PrepareOptions(sequence_field="nope"))
    # an --id-field the file does not have is an error, not genomes silently numbered
    with pytest.raises(DnahnetError, match=r"genomes.parquet: no column 'nope' \(--id-field\); "
                                           r"columns: seq_col"):
        prepare([parquet], tmp_path / "y", PrepareOptions(sequence_field="seq_col",
                                                          id_field="nope"))
    with pytest.raises(DnahnetError, match=r"opengenome.jsonl.gz: line 1: no field 'name' "
                                           r"\(--id-field\)"):
        prepare([jsonl], tmp_path / "z", PrepareOptions(id_field="name"))


def test_inspect_prints_summary_and_fragments(tmp_path):
    out = tmp_path / "ds"
    prepare([PHAGES["lambda"]], out, PrepareOptions(fragment_length=1000, val_fraction=0.0))
    result = CliRunner().invoke(app, ["inspect", str(out), "-n", "2", "--width", "30"])
    assert result.exit_code == 0, result.output
    seq = sequence_of(PHAGES["lambda"])
    assert "train" in result.output and "48 fragments" in result.output
    assert f"[0] phage_lambda_NC_001416.1 (1000 nt) {seq[:30]}" in result.output
    assert f"[1] phage_lambda_NC_001416.1 (1000 nt) {seq[1000:1030]}" in result.output


def test_an_empty_train_split_is_warned_about(tmp_path):
    """Three phages at --val-fraction 0.34 --test-fraction 0.34 all land in val and test:
    training on the result is impossible, and the summary says so."""
    out = tmp_path / "ds"
    result = invoke(*PHAGES.values(), "--out", out, "--fragment-length", "256",
                    "--val-fraction", "0.34", "--test-fraction", "0.34")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["splits"]["train"]["fragments"] == 0
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: the train split is empty: genomes go to splits whole, and 3 genome(s) at "
        "--val-fraction 0.34 and --test-fraction 0.34 gave it none, so training will not be "
        "possible (use smaller --val-fraction/--test-fraction, more genomes or another --seed)"
    ], result.output
    assert warnings[0] in (out / "summary.txt").read_text()


def test_inspect_and_evaluate_of_a_damaged_index_print_one_line(tmp_path):
    """index.bin keeps its size but holds random bytes: one `dnahnet: error:` line naming
    it, no traceback, and evaluate does not report 0 bits on empty fragments."""
    out = tmp_path / "ds"
    prepare([PHAGES["lambda"]], out, PrepareOptions(fragment_length=1000, val_fraction=0.0,
                                                    test_fraction=0.0))
    index = out / "train" / "index.bin"
    index.write_bytes(bytes(range(256)) * (index.stat().st_size // 256)
                      + b"\xff" * (index.stat().st_size % 256))
    for args in (["inspect", str(out)],
                 ["evaluate", "--data", str(out), "--split", "train", "--config",
                  "dnahnet-tiny", "--max-fragments", "4", "--device", "cpu"]):
        run = subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=120)
        assert run.returncode == 1, (args, run.stdout, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
        assert lines[0].startswith(f"dnahnet: error: {index}: damaged (entry 0 "), lines[0]
        assert lines[0].endswith("; prepare the dataset again")
