"""The model commands: likelihood, generate, model-info, --help/--version, error lines."""

import gzip
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dnahnet_cli.app import COMMANDS, app, available_commands
from dnahnet_core import __version__
from dnahnet_core.alphabet import encode
from dnahnet_core.model import build_model, load_config, save_model
from dnahnet_core.tasks.generate import generate

runner = CliRunner()


@pytest.fixture(scope="module")
def phix_fasta(tmp_path_factory):
    from conftest import TEST_DATA

    path = tmp_path_factory.mktemp("fa") / "phix.fa"
    text = gzip.open(TEST_DATA / "pool" / "phage_phiX174.fna.gz", "rt").read()
    path.write_text(text + ">short soft-masked\nacgtnACGTRYacgt\n")
    return path


def test_every_planned_command_is_installed():
    assert available_commands() == COMMANDS


def test_version_and_help():
    assert runner.invoke(app, ["--version"]).output.strip() == f"dnahnet {__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


def test_likelihood_summary_matches_model(phix_fasta, tmp_path):
    out = tmp_path / "ll.tsv"
    args = [
        "likelihood",
        str(phix_fasta),
        "--config",
        "dnahnet-tiny",
        "--context",
        "1024",
        "-o",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert rows[0] == ["id", "length", "total_loglik", "mean_loglik", "bits_per_nt"]
    assert [r[0] for r in rows[1:]] == ["phiX174", "short"]
    assert rows[1][1] == "5386" and rows[2][1] == "15"
    model = build_model(load_config("dnahnet-tiny"), seed=0).eval()
    tokens = torch.from_numpy(encode("acgtnACGTRYacgt").astype("int64"))[None]
    expected = model.log_probs(tokens).sum().item()
    assert float(rows[2][2]) == pytest.approx(expected, abs=1e-3)
    bits = -float(rows[1][3]) / np.log(2)
    assert float(rows[1][4]) == pytest.approx(bits, rel=1e-4)


def test_likelihood_keeps_an_empty_record_with_na(tmp_path):
    fasta = tmp_path / "with_empty.fa"
    fasta.write_text(">first\nACGTACGTAA\n>empty description\n>last\nACGT\n")
    out = tmp_path / "ll.tsv"
    result = runner.invoke(
        app, ["likelihood", str(fasta), "--config", "dnahnet-tiny", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in out.read_text().splitlines()[1:]]
    assert [r[0] for r in rows] == ["first", "empty", "last"]
    assert rows[1][1:] == ["0", "0.0000", "NA", "NA"]
    assert all(np.isfinite(float(x)) for r in (rows[0], rows[2]) for x in r[1:])


def test_likelihood_per_position_rows_sum_to_total(phix_fasta, tmp_path):
    summary, per_pos = tmp_path / "s.tsv", tmp_path / "p.tsv"
    base = ["likelihood", str(phix_fasta), "--config", "dnahnet-tiny", "--context", "1024"]
    assert runner.invoke(app, base + ["-o", str(summary)]).exit_code == 0
    assert runner.invoke(app, base + ["--per-position", "-o", str(per_pos)]).exit_code == 0
    lines = per_pos.read_text().splitlines()
    header = lines[0].split("\t")
    assert header == [
        "id",
        "pos",
        "base",
        "logprob",
        "stage1_boundary_prob",
        "stage2_boundary_prob",
    ]
    rows = [line.split("\t") for line in lines[1:] if line.startswith("phiX174")]
    assert len(rows) == 5386 and rows[0][1] == "1" and rows[-1][1] == "5386"
    total = sum(float(r[3]) for r in rows)
    want = float(summary.read_text().splitlines()[1].split("\t")[2])
    assert total == pytest.approx(want, abs=0.5)  # rows are rounded to 5 decimals
    assert all(0.0 <= float(r[4]) <= 1.0 for r in rows)


def test_likelihood_with_saved_model_directory(phix_fasta, tmp_path):
    save_model(build_model(load_config("dnahnet-tiny"), seed=4), tmp_path / "m")
    result = runner.invoke(app, ["likelihood", str(phix_fasta), "--model", str(tmp_path / "m")])
    assert result.exit_code == 0 and result.output.count("\n") == 3


def test_greedy_generation_equals_greedy_full_forward():
    model = build_model(load_config("dnahnet-tiny"), seed=0).eval()
    new = generate(model, "ACGTTGCA", 40, top_k=1, device="cpu")  # where the loop below runs
    sequence = "ACGTTGCA"
    for _ in range(40):
        tokens = torch.from_numpy(encode(sequence + "A").astype("int64"))[None]
        logits = model(tokens).logits[0, -1]
        logits[4] = float("-inf")
        sequence += "ACGT"[int(logits.argmax())]
    assert "ACGTTGCA" + new == sequence


def test_generate_command_is_seeded(tmp_path):
    args = ["generate", "--config", "dnahnet-tiny", "-p", "ACGT", "-n", "50", "--sample-seed", "3"]
    a, b = runner.invoke(app, args), runner.invoke(app, args)
    assert a.exit_code == 0 and a.output == b.output
    body = "".join(a.output.splitlines()[1:])
    assert len(body) == 54 and set(body) <= set("ACGT")
    ambiguous = runner.invoke(app, [*args[:4], "acgRy", *args[5:]])
    assert "".join(ambiguous.output.splitlines()[1:]).startswith("ACGNN")  # what it read


def test_model_info_lists_presets_and_counts():
    result = runner.invoke(app, ["model-info", "--list"])
    assert result.exit_code == 0
    for name in (
        "dnahnet-tiny",
        "dnahnet-small",
        "dnahnet-2stage-r32",
        "dnahnet-2stage-r22",
        "dnahnet-1stage",
        "transformer-small",
        "mamba2-small",
    ):
        assert name in result.output
    result = runner.invoke(app, ["model-info", "--config", "dnahnet-tiny", "-L", "4096"])
    assert result.exit_code == 0 and "main network" in result.output and "4,096" in result.output
    total = sum(p.numel() for p in build_model(load_config("dnahnet-tiny")).parameters())
    assert f"{total:,}" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["likelihood", "missing.fa", "--config", "dnahnet-tiny"], "missing.fa"),
        (["model-info", "--config", "no-such-preset"], "unknown model config"),
        (["generate", "--config", "dnahnet-tiny", "-p", "ACGZ"], "invalid nucleotide 'Z'"),
        (["generate", "--config", "dnahnet-tiny", "-p", "AC GT"],
         "invalid nucleotide (a space) at position 3"),
        (["likelihood", "x.fa", "--model", "/nonexistent/model"], "not a model directory"),
    ],
)
def test_user_errors_are_one_line_without_traceback(args, message, tmp_path):
    (tmp_path / "x.fa").write_text(">a\nACGT\n")
    proc = subprocess.run(
        [sys.executable, "-m", "dnahnet_cli", *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnahnet: error:") and message in lines[0]
    assert "Traceback" not in proc.stderr


def test_atomic_outputs_have_normal_permissions(tmp_path):
    from dnahnet_core.io.atomic import atomic_directory, atomic_open

    with atomic_open(tmp_path / "out.tsv") as handle:
        handle.write("x\n")
    with atomic_directory(tmp_path / "dir") as directory:
        (directory / "f").write_text("y")
    assert (tmp_path / "out.tsv").stat().st_mode & 0o044 == 0o044  # group/other readable
    assert (tmp_path / "dir").stat().st_mode & 0o055 == 0o055
