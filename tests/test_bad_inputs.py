"""The bad-input matrix (issue 11): every command x every class of bad input.

Each case runs the real command line in-process (``dnahnet_cli.app.run``) in a scratch
directory holding copies of real inputs (tests/data, the demo data, a prepared dataset,
a training run, model directories), pre-existing outputs and a few traps (a regular
file where a directory is expected, a non-empty directory, a link to /dev/full). It
asserts the exit status, that stderr is exactly one ``dnahnet: error: ...`` line
naming what was wrong (no traceback), and that the scratch directory and TMPDIR are
unchanged byte for byte: no partial output, no temporary name, nothing deleted.

A few cases need a real process (SIGTERM, standard input); they are at the end.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DEMO_DATA, REPO, TEST_DATA, leftovers

ANNOTATED = TEST_DATA / "annotated"
POOL = TEST_DATA / "pool"
DMS_CONTIG, DMS_GENE, DMS_FLANK = "NZ_JNJU01000007.1", (33531, 34013), 300
TINY = ("--config", "dnahnet-tiny")


# ------------------------------------------------------------------ the scratch directory


def _write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)


def _binary() -> bytes:
    """Bytes of no text format: every byte value, invalid UTF-8 included."""
    return bytes(range(256)) * 8


def _run_ok(args: list[str]) -> None:
    from dnahnet_cli.app import run

    code = run(args)
    assert code == 0, f"fixture command failed: dnahnet {' '.join(args)}"


def _vcf_variant(text: str, pos: str) -> str:
    """The demo VCF with the POS of its first record replaced."""
    lines = text.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    fields = lines[first].split("\t")
    fields[1] = pos
    lines[first] = "\t".join(fields)
    return "".join(lines)


def _model_variants(root: Path) -> None:
    """A saved tiny model and copies broken in every way a model directory can be."""
    import torch

    from dnahnet_core.model import build_model, load_config, save_model

    good = root / "models" / "good"
    save_model(build_model(load_config("dnahnet-tiny")), good)
    config = json.loads((good / "config.json").read_text())

    def variant(name: str, config_text: str | bytes | None = None, weights: bytes | None = None):
        target = root / "models" / name
        shutil.copytree(good, target)
        if config_text is not None:
            _write(target / "config.json", config_text)
        if weights is not None:
            _write(target / "model.safetensors", weights)

    variant("list", "[1, 2, 3]\n")
    variant("strings", json.dumps({**config, "d_model": ["32", "48", "64"]}))
    variant("heads0", json.dumps({**config, "num_heads": [0, 2, 2]}))
    variant("indivisible", json.dumps({**config, "d_model": [32, 48, 66], "num_heads": [2, 2, 4]}))
    variant("headdim", json.dumps({**config, "ssm": {**config["ssm"], "headdim": 24}}))
    variant("shapes", json.dumps({**config, "d_model": [32, 64, 64]}))
    variant("binaryconfig", _binary())
    digits = "9" * 5000  # Python refuses to read an integer this long
    variant("bigint", json.dumps(config).replace('"attn_window": 64', f'"attn_window": {digits}'))
    variant("nested", "[" * 100_000 + "]" * 100_000)
    variant("huge", json.dumps({**config, "d_model": [32, 48, 10**9]}))  # no machine holds it
    variant("corrupt", weights=_binary())
    from safetensors.torch import load_file, save_file

    weights = load_file(good / "model.safetensors")  # a diverged run's weights
    nan = torch.full_like(weights["embedding.weight"], float("nan"))
    save_file({**weights, "embedding.weight": nan}, root / "nan")
    variant("nan", weights=(root / "nan").read_bytes())
    (root / "nan").unlink()
    variant("noconfig")
    (root / "models" / "noconfig" / "config.json").unlink()


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    """The inputs every case starts from (built once; each case works on a copy)."""
    root = tmp_path_factory.mktemp("template")
    cwd = os.getcwd()
    # genomes and annotations (real data)
    shutil.copy(POOL / "phage_phiX174.fna.gz", root / "phix.fa.gz")
    shutil.copy(POOL / "phage_lambda_NC_001416.1.fna.gz", root / "lambda.fa.gz")
    phix = gzip.decompress((root / "phix.fa.gz").read_bytes()).decode()
    _write(root / "phix.fa", phix)
    _write(root / "truncated.fa.gz", (root / "lambda.fa.gz").read_bytes()[:6000])
    _write(root / "invalid.fa", phix[:200] + "@@" + phix[200:400] + "\n")
    _write(root / "invalid_second.fa", phix + ">second\n" + phix[200:400] + "@@\n")
    _write(root / "two.fa", phix + phix.replace(">", ">copy_", 1))
    shutil.copy(DEMO_DATA / "mycoplasma_alvi.fna.gz", root / "myco.fa.gz")
    for name in ("mycoplasma_subset.fna.gz", "mycoplasma_subset.gff.gz"):
        shutil.copy(ANNOTATED / name, root / name.replace("mycoplasma_", ""))
    # variants
    vcf = (DEMO_DATA / "demo_variants.vcf").read_text()
    _write(root / "variants.vcf", vcf)
    _write(root / "pos_superscript.vcf", _vcf_variant(vcf, "1\u00b23"))
    _write(root / "pos_fullwidth.vcf", _vcf_variant(vcf, "\uff11\uff12\uff13"))
    _write(root / "pos_zero.vcf", _vcf_variant(vcf, "0"))
    _write(root / "last_beyond_contig.vcf", vcf.replace("153547\tdemo32", "999999\tdemo32"))
    _write(root / "chrom_map_one_column.tsv", "NZ_JNJU01000001.1\n")
    # essentiality labels: real locus tags of the subset annotation
    tags = []
    for line in gzip.open(root / "subset.gff.gz", "rt"):
        if "\tCDS\t" in line and "locus_tag=" in line:
            tags.append(line.split("locus_tag=")[1].split(";")[0].strip())
    labels = "".join(f"{tag}\t{'E' if i % 2 else 'NE'}\n" for i, tag in enumerate(tags[:12]))
    _write(root / "labels.tsv", "locus_tag\tessential\n" + labels)
    gff = gzip.decompress((root / "subset.gff.gz").read_bytes()).decode()
    _write(root / "bad_phase.gff", gff.replace("\t+\t0\tID=cds-", "\t+\t5\tID=cds-", 1))
    # score-dms: the genomic context of a real Mycoplasma gene and SNVs in its first codons
    from dnahnet_core.io.fasta import load_genome

    start, end = DMS_GENE
    context = load_genome(root / "myco.fa.gz")[DMS_CONTIG][start - 1 - DMS_FLANK : end + DMS_FLANK]
    _write(root / "dms_context.fa", f">{DMS_CONTIG}\n{context}\n")
    rows = ["hgvs_nt,score"]
    for i in range(1, 31):
        ref = context[DMS_FLANK + i - 1]
        alt = "ACGT"[("ACGT".index(ref) + 1) % 4]
        rows.append(f"c.{i}{ref}>{alt},{i / 10}")
    _write(root / "scores.csv", "\n".join(rows) + "\n")
    _write(root / "scores_no_score.csv", rows[0].replace("score", "value") + "\n" + rows[1] + "\n")
    # every variant names the base after the real one as its reference (as a CDS off by one)
    wrong = [rows[0]] + [f"c.{i}{'ACGT'[('ACGT'.index(context[DMS_FLANK + i - 1]) + 1) % 4]}>"
                         f"{context[DMS_FLANK + i - 1]},{i / 10}" for i in range(1, 11)]
    _write(root / "scores_wrong_ref.csv", "\n".join(wrong) + "\n")
    # traps and pre-existing outputs
    _write(root / "existing.tsv", "keep me\n")
    _write(root / "afile", "a regular file, not a directory\n")
    (root / "somedir").mkdir()
    _write(root / "report" / "notes.txt", "the user's notes\n")
    _write(root / "binary.bin", _binary())
    _write(root / "empty.txt", "")
    (root / "full.png").symlink_to("/dev/full")
    (root / "full.tsv").symlink_to("/dev/full")
    # models, a prepared dataset, a training run, a BED of chunks
    _model_variants(root)
    try:
        os.chdir(root)
        _run_ok(["prepare", "phix.fa.gz", "lambda.fa.gz", "-o", "prepared", "--fragment-length",
                 "1024", "--val-fraction", "0.5", "--test-fraction", "0"])
        _run_ok(["segments", "subset.fna.gz", *TINY, "--context", "512", "-o", "chunks.bed"])
    finally:
        os.chdir(cwd)
    _write(root / "broken_dataset" / "manifest.json", _binary())
    model_dir = REPO / "dnahnet_core" / "default_model"
    (root / "run").mkdir()
    shutil.copy(model_dir / "training_metrics.jsonl", root / "run" / "metrics.jsonl")
    shutil.copy(model_dir / "config.json", root / "run" / "config.json")
    _write(root / "run_binary" / "metrics.jsonl", _binary())
    _write(root / "run_no_json" / "metrics.jsonl", "step 1 loss 2.0\nstep 2 loss 1.9\n")
    _write(root / "bad_coords.bed", "NZ_JNJU01000001.1\t500\t100\tstage1\t0\t+\n")
    _write(root / "three_columns.bed", "# chunks\nNZ_JNJU01000001.1\t100\t500\n")
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: files by content, directories, links by target."""
    entries: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                entries[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[rel] = ("dir",)
            else:
                entries[rel] = ("file", path.read_bytes())
    return entries


def changes(before: dict, after: dict) -> list[str]:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return [f"added {p}" for p in added] + [f"removed {p}" for p in removed] + [
        f"changed {p}" for p in changed
    ]


@pytest.fixture
def workspace(template, tmp_path, monkeypatch) -> Path:
    root = tmp_path / "work"
    shutil.copytree(template, root, symlinks=True)
    monkeypatch.chdir(root)
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))
    return root


# ------------------------------------------------------------------ the cases


@dataclass(frozen=True)
class Case:
    command: str
    kind: str  # the class of bad input
    args: tuple[str, ...]
    says: str  # the error line names this (the user's path, the option)
    code: int = 1  # 1: an input or output error, 2: a usage error


def usage(command, kind, args, says) -> Case:
    return Case(command, kind, tuple(args), says, code=2)


def bad(command, kind, args, says) -> Case:
    return Case(command, kind, tuple(args), says, code=1)


LK = ("likelihood", "phix.fa.gz", *TINY)
GN = ("generate", *TINY, "-n", "20")
SV = ("score-variants", "variants.vcf", "-r", "myco.fa.gz", *TINY, "--window", "128")
SD = ("score-dms", "scores.csv", "-s", "dms_context.fa", "--cds",
      f"{DMS_FLANK + 1}-{DMS_FLANK + DMS_GENE[1] - DMS_GENE[0] + 1}:+", *TINY, "--window", "128")
ES = ("essentiality", "subset.fna.gz", "subset.gff.gz", *TINY, "--window", "256",
      "--no-reverse-complement")
SG = ("segments", "phix.fa.gz", *TINY, "--context", "512")
SR = ("segments-report", "chunks.bed", "-a", "subset.gff.gz", "-g", "subset.fna.gz")
EM = ("embed", "phix.fa.gz", *TINY, "--context", "512", "-o", "e.npz")
EM_IN = ("embed", *TINY, "-o", "e.npz")  # + the input
TR = ("train", "--data", "prepared", *TINY, "--max-steps", "2", "--batch-size", "2",
      "--device", "cpu")
EV = ("evaluate", "-m", "models/good", "--data", "prepared", "--split", "val")
PR = ("prepare", "phix.fa.gz", "lambda.fa.gz", "--fragment-length", "1024")
MODEL_DIRS = {  # directory -> what the error line names
    "models/list": "config.json",
    "models/strings": "d_model",
    "models/heads0": "num_heads",
    "models/indivisible": "num_heads",
    "models/headdim": "headdim",
    "models/shapes": "model.safetensors",
    "models/bigint": "models/bigint/config.json: not valid JSON (Exceeds the limit",
    "models/nested": "models/nested/config.json: not valid JSON (maximum recursion",
    "models/huge": "models/huge/config.json: the model is too large to build",
    "models/nan": "tensor 'embedding.weight' holds NaN or infinite values",
    "models/binaryconfig": "config.json",
    "models/corrupt": "model.safetensors",
    "models/noconfig": "config.json",
    "models/missing": "models/missing",
}


def _cases() -> list[Case]:
    c: list[Case] = []
    lk = ("likelihood", "phix.fa.gz")
    # ---------------------------------------------------------------- likelihood
    c += [
        usage("likelihood", "usage", ["likelihood"], "fasta"),
        usage("likelihood", "usage", [*LK, "--bogus"], "--bogus"),
        usage("likelihood", "usage", [*LK, "--context", "abc"], "--context"),
        usage("likelihood", "range", [*LK, "--context", "0"], "--context"),
        usage("likelihood", "range", [*LK, "--context", "-5"], "--context"),
        usage("likelihood", "range", [*LK, "--batch-size", "0"], "--batch-size"),
        usage("likelihood", "range", [*LK, "--batch-size", "-1"], "--batch-size"),
        usage("likelihood", "range", [*LK, "--seed", "-1"], "--seed"),
        usage("likelihood", "range", [*LK, "--seed", "18446744073709551616"], "--seed"),
        bad("likelihood", "input-missing", ["likelihood", "missing.fa", *TINY], "missing.fa"),
        bad("likelihood", "input-directory", ["likelihood", "somedir", *TINY], "somedir"),
        bad("likelihood", "input-empty", ["likelihood", "empty.txt", *TINY], "empty.txt"),
        bad("likelihood", "input-binary", ["likelihood", "binary.bin", *TINY], "binary.bin"),
        bad("likelihood", "input-format", ["likelihood", "variants.vcf", *TINY], "variants.vcf"),
        bad("likelihood", "input-truncated", ["likelihood", "truncated.fa.gz", *TINY],
            "truncated.fa.gz"),
        bad("likelihood", "input-invalid", ["likelihood", "invalid.fa", *TINY], "invalid.fa"),
        bad("likelihood", "input-invalid", ["likelihood", "invalid_second.fa", *TINY],
            "record second"),
        bad("likelihood", "input-invalid", ["likelihood", "invalid_second.fa", *TINY,
                                            "--per-position"], "record second"),
        bad("likelihood", "output-parent-file", [*LK, "-o", "afile/out.tsv"], "afile"),
        bad("likelihood", "output-directory", [*LK, "-o", "somedir"], "somedir"),
        bad("likelihood", "output-empty-name", [*LK, "-o", ""], "empty"),
        bad("likelihood", "output-os-error", [*LK, "-o", "/proc/dnahnet_out.tsv"], "/proc"),
        bad("likelihood", "output-disk-full", [*LK, "-o", "/dev/full"], "/dev/full"),
        bad("likelihood", "output-disk-full", [*LK, "-o", "full.tsv"], "full.tsv"),
        bad("likelihood", "output-missing-input", ["likelihood", "missing.fa", *TINY, "-o",
                                                   "existing.tsv"], "missing.fa"),
        bad("likelihood", "output-is-input", ["likelihood", "phix.fa", *TINY, "-o", "phix.fa"],
            "also an input"),
        bad("likelihood", "model-both", [*lk, "-m", "models/good", *TINY], "--config"),
        # torch's other device types cannot run the model: one usage line, not a traceback
        usage("likelihood", "option-value", [*LK, "--device", "mps"], "--device"),
        usage("likelihood", "option-value", [*LK, "--device", "meta"], "--device"),
        usage("score-variants", "option-value", [*SV, "--device", "xla"], "--device"),
        usage("embed", "option-value", [*EM, "--device", "cuda:"], "--device"),
        bad("likelihood", "model-preset", [*lk, "--config", "no-such-preset"], "no-such-preset"),
    ]
    c += [bad("likelihood", "model-dir", [*lk, "-m", d], says) for d, says in MODEL_DIRS.items()]
    # ---------------------------------------------------------------- generate
    c += [
        usage("generate", "usage", [*GN, "--bogus"], "--bogus"),
        usage("generate", "usage", [*GN, "-n", "1e12"], "-n"),
        usage("generate", "usage", [*GN, "--temperature", "hot"], "--temperature"),
        usage("generate", "range", [*GN, "-n", "-5"], "-n"),
        usage("generate", "range", [*GN, "-n", "1000000000000"], "-n"),
        usage("generate", "range", [*GN, "--temperature", "nan"], "--temperature"),
        usage("generate", "range", [*GN, "--temperature", "0"], "--temperature"),
        usage("generate", "range", [*GN, "--temperature", "-1"], "--temperature"),
        usage("generate", "range", [*GN, "--temperature", "inf"], "--temperature"),
        usage("generate", "range", [*GN, "--top-k", "-1"], "--top-k"),
        usage("generate", "range", [*GN, "--top-k", "6"], "--top-k"),
        usage("generate", "range", [*GN, "--sample-seed", "18446744073709551616"],
              "--sample-seed"),
        bad("generate", "input-invalid", [*GN, "--prompt", "ACGT!!"], "prompt"),
        bad("generate", "model-preset", ["generate", "--config", "no-such-preset"],
            "no-such-preset"),
        bad("generate", "model-dir", ["generate", "-m", "models/heads0"], "num_heads"),
        bad("generate", "model-dir", ["generate", "-m", "models/shapes"], "model.safetensors"),
    ]
    # ---------------------------------------------------------------- model-info
    c += [
        usage("model-info", "usage", ["model-info", "--bogus"], "--bogus"),
        usage("model-info", "usage", ["model-info", "-c", "dnahnet-tiny", "-L", "abc"], "-L"),
        usage("model-info", "range", ["model-info", "-c", "dnahnet-tiny", "-L", "-5"], "-L"),
        usage("model-info", "range", ["model-info", "-c", "dnahnet-tiny", "-L", "0"], "-L"),
        bad("model-info", "model-preset", ["model-info", "-c", "no-such-preset"],
            "no-such-preset"),
        bad("model-info", "model-dir", ["model-info", "-c", "models/list"], "config.json"),
        bad("model-info", "model-dir", ["model-info", "-c", "models/indivisible/config.json"],
            "num_heads"),
        bad("model-info", "model-dir", ["model-info", "-c", "models/strings"], "d_model"),
        bad("model-info", "model-dir", ["model-info", "-c", "models/binaryconfig"],
            "config.json"),
        bad("model-info", "model-dir", ["model-info", "-c", "models/huge/config.json"],
            "models/huge/config.json: the model is too large to build"),
        bad("model-info", "usage", ["model-info"], "--config"),
        bad("model-info", "usage", ["model-info", "--list", "-c", "dnahnet-tiny"],
            "--list shows every preset; leave --config out"),
    ]
    # ---------------------------------------------------------------- prepare
    c += [
        usage("prepare", "usage", ["prepare", "phix.fa.gz"], "--out"),
        usage("prepare", "usage", [*PR, "-o", "new", "--fragment-length", "x"],
              "--fragment-length"),
        usage("prepare", "range", [*PR, "-o", "new", "--fragment-length", "0"],
              "--fragment-length"),
        usage("prepare", "range", [*PR, "-o", "new", "--fragment-length", "-4"],
              "--fragment-length"),
        usage("prepare", "range", [*PR, "-o", "new", "--val-fraction", "1.5"],
              "--val-fraction"),
        usage("prepare", "range", [*PR, "-o", "new", "--test-fraction", "1"],
              "1: must be >= 0 and < 1 (the train split needs genomes)"),
        usage("prepare", "range", [*PR, "-o", "new", "--val-fraction", "nan"],
              "--val-fraction"),
        usage("prepare", "range", [*PR, "-o", "new", "--test-fraction", "-0.1"],
              "--test-fraction"),
        usage("prepare", "range", [*PR, "-o", "new", "--max-n-fraction", "2"],
              "--max-n-fraction"),
        usage("prepare", "range", [*PR, "-o", "new", "--workers", "0"], "--workers"),
        usage("prepare", "range", [*PR, "-o", "new", "--workers", "100000"], "CPUs"),
        usage("prepare", "range", [*PR, "-o", "new", "--min-tail-length", "-1"],
              "--min-tail-length"),
        usage("prepare", "range", [*PR, "-o", "new", "--min-completeness", "nan"],
              "--min-completeness"),
        bad("prepare", "input-missing", ["prepare", "missing.fa", "-o", "new"], "missing.fa"),
        bad("prepare", "input-empty", ["prepare", "empty.txt", "-o", "new"], "empty.txt"),
        bad("prepare", "input-binary", ["prepare", "binary.bin", "-o", "new"], "binary.bin"),
        bad("prepare", "input-truncated", ["prepare", "truncated.fa.gz", "-o", "new"],
            "truncated.fa.gz"),
        bad("prepare", "input-binary", [*PR, "-o", "new", "--metadata", "binary.bin"],
            "binary.bin"),
        bad("prepare", "input-missing", [*PR, "-o", "new", "--metadata", "missing.tsv"],
            "missing.tsv"),
        bad("prepare", "output-nonempty-dir", [*PR, "-o", "report"], "report"),
        bad("prepare", "output-nonempty-dir", [*PR, "-o", "."], "."),
        bad("prepare", "output-overwrite-cwd", [*PR, "-o", ".", "--overwrite"], "current"),
        bad("prepare", "output-overwrite-input", ["prepare", "report/notes.txt", "-o",
                                                  "report", "--overwrite"], "input"),
        bad("prepare", "output-is-file", [*PR, "-o", "afile"], "afile"),
        bad("prepare", "output-parent-file", [*PR, "-o", "afile/new"], "afile"),
        bad("prepare", "output-os-error", [*PR, "-o", "/proc/dnahnet_prepared"], "/proc"),
    ]
    # ---------------------------------------------------------------- inspect
    c += [
        usage("inspect", "usage", ["inspect"], "directory"),
        usage("inspect", "usage", ["inspect", "prepared", "-n", "x"], "-n"),
        usage("inspect", "range", ["inspect", "prepared", "-n", "-1"], "-n"),
        usage("inspect", "range", ["inspect", "prepared", "--width", "-1"], "--width"),
        bad("inspect", "input-missing", ["inspect", "missing_dir"], "missing_dir"),
        bad("inspect", "input-format", ["inspect", "somedir"], "somedir"),
        bad("inspect", "input-format", ["inspect", "phix.fa"], "phix.fa"),
        bad("inspect", "input-binary", ["inspect", "broken_dataset"], "broken_dataset"),
        bad("inspect", "input-format", ["inspect", "prepared", "--split", "nosuch"], "nosuch"),
    ]
    # ---------------------------------------------------------------- train
    c += [
        usage("train", "usage", ["train", "--data", "prepared"], "--out"),
        usage("train", "usage", [*TR, "-o", "run2", "--lr", "fast"], "--lr"),
        usage("train", "range", [*TR, "-o", "run2", "--lr", "nan"], "--lr"),
        usage("train", "range", [*TR, "-o", "run2", "--lr", "0"], "--lr"),
        usage("train", "range", [*TR, "-o", "run2", "--lr", "-1e-3"], "--lr"),
        usage("train", "range", [*TR, "-o", "run2", "--lr", "1e300"], "1e+300: must be"),
        usage("train", "range", [*TR, "-o", "run2", "--warmup", "-3"], "--warmup"),
        usage("train", "range", [*TR, "-o", "run2", "--eval-fragments", "0"],
              "--eval-fragments"),
        usage("train", "range", [*TR, "-o", "run2", "--batch-size", "0"], "--batch-size"),
        usage("train", "range", [*TR, "-o", "run2", "--max-steps", "0"], "--max-steps"),
        usage("train", "range", [*TR, "-o", "run2", "--grad-accum", "0"], "--grad-accum"),
        usage("train", "range", [*TR, "-o", "run2", "--tokens", "nan"], "--tokens"),
        usage("train", "range", [*TR, "-o", "run2", "--tokens", "-5"], "--tokens"),
        usage("train", "range", [*TR, "-o", "run2", "--min-lr-ratio", "2"], "--min-lr-ratio"),
        usage("train", "range", [*TR, "-o", "run2", "--min-lr-ratio", "nan"],
              "--min-lr-ratio"),
        usage("train", "range", [*TR, "-o", "run2", "--weight-decay", "-1"], "--weight-decay"),
        usage("train", "range", [*TR, "-o", "run2", "--grad-clip", "-1"], "--grad-clip"),
        usage("train", "range", [*TR, "-o", "run2", "--ratio-loss-weight", "nan"],
              "--ratio-loss-weight"),
        usage("train", "range", [*TR, "-o", "run2", "--keep", "0"], "--keep"),
        usage("train", "range", [*TR, "-o", "run2", "--log-every", "0"], "--log-every"),
        usage("train", "range", [*TR, "-o", "run2", "--eval-every", "0"], "--eval-every"),
        usage("train", "range", [*TR, "-o", "run2", "--save-every", "-2"], "--save-every"),
        usage("train", "range", [*TR, "-o", "run2", "--stop-after", "0"], "--stop-after"),
        usage("train", "range", [*TR, "-o", "run2", "--time-limit", "0"], "--time-limit"),
        usage("train", "range", [*TR, "-o", "run2", "--time-limit", "inf"], "--time-limit"),
        usage("train", "range", [*TR, "-o", "run2", "--seed", "4294967296"], "--seed"),
        bad("train", "option-value", [*TR, "-o", "run2", "--batch-size", "10000000000000"],
            "--batch-size 10000000000000 x --grad-accum 1: a step would take"),
        bad("train", "option-value", [*TR, "-o", "run2", "--grad-accum", "10000000000000"],
            "train split of prepared"),
        bad("train", "input-missing", ["train", "--data", "missing_dir", *TINY, "-o", "run2"],
            "missing_dir"),
        bad("train", "input-format", ["train", "--data", "phix.fa", *TINY, "-o", "run2"],
            "--data phix.fa: a file, not a prepared dataset directory"),
        bad("train", "input-format", ["train", "--data", "somedir", *TINY, "-o", "run2"],
            "somedir"),
        bad("train", "input-binary", ["train", "--data", "broken_dataset", *TINY, "-o", "run2"],
            "broken_dataset"),
        bad("train", "model-preset", ["train", "--data", "prepared", "--config", "nope", "-o",
                                      "run2"], "nope"),
        bad("train", "model-dir", ["train", "--data", "prepared", "--config",
                                   "models/heads0/config.json", "-o", "run2"], "num_heads"),
        bad("train", "model-dir", ["train", "--data", "prepared", "--config",
                                   "models/list/config.json", "-o", "run2"], "config.json"),
        bad("train", "output-parent-file", [*TR, "-o", "afile/run2"], "afile"),
        bad("train", "output-is-file", [*TR, "-o", "afile"], "afile"),
        bad("train", "output-nonempty-dir", [*TR, "-o", "report"], "report"),
        bad("train", "resume-nothing", ["train", "-o", "somedir", "--resume"], "somedir"),
        bad("train", "option-value", [*TR, "-o", "run2", "--precision", "fp8"], "--precision"),
        usage("train", "option-value", [*TR, "-o", "run2", "--device", "tpu"], "'tpu'"),
    ]
    # ---------------------------------------------------------------- evaluate
    c += [
        usage("evaluate", "usage", ["evaluate", "-m", "models/good"], "--data"),
        usage("evaluate", "usage", [*EV, "--batch-size", "many"], "--batch-size"),
        usage("evaluate", "range", [*EV, "--batch-size", "0"], "--batch-size"),
        usage("evaluate", "range", [*EV, "--max-fragments", "0"], "--max-fragments"),
        usage("evaluate", "range", [*EV, "--max-fragments", "-1"], "--max-fragments"),
        bad("evaluate", "input-missing", ["evaluate", "-m", "models/good", "--data",
                                          "missing_dir"], "missing_dir"),
        bad("evaluate", "input-format", ["evaluate", "-m", "models/good", "--data", "phix.fa"],
            "--data phix.fa: a file, not a prepared dataset directory"),
        bad("evaluate", "input-binary", ["evaluate", "-m", "models/good", "--data",
                                         "broken_dataset"], "broken_dataset"),
        bad("evaluate", "input-format", [*EV[:-1], "nosuch"], "nosuch"),
        bad("evaluate", "input-empty", [*EV[:-1], "test"], "test"),
        bad("evaluate", "option-value", [*EV, "--precision", "fp8"], "--precision"),
        bad("evaluate", "model-dir", ["evaluate", "-m", "models/shapes", "--data", "prepared",
                                      "--split", "val"], "model.safetensors"),
        bad("evaluate", "model-dir", ["evaluate", "-m", "models/corrupt", "--data", "prepared",
                                      "--split", "val"], "model.safetensors"),
        bad("evaluate", "model-dir", ["evaluate", "-m", "models/missing", "--data", "prepared",
                                      "--split", "val"], "models/missing"),
    ]
    # ---------------------------------------------------------------- plot-metrics
    c += [
        usage("plot-metrics", "usage", ["plot-metrics"], "runs"),
        bad("plot-metrics", "output-format", ["plot-metrics", "run", "-o", "c.xyz"], "c.xyz"),
        bad("plot-metrics", "output-parent-file", ["plot-metrics", "run", "-o", "afile/c.png"],
            "afile"),
        bad("plot-metrics", "output-directory", ["plot-metrics", "run", "-o", "somedir"],
            "somedir"),
        bad("plot-metrics", "output-disk-full", ["plot-metrics", "run", "-o", "full.png"],
            "full.png"),
        bad("plot-metrics", "output-stdout", ["plot-metrics", "run", "-o", "-"], "-"),
        bad("plot-metrics", "input-missing", ["plot-metrics", "missing_run"], "missing_run"),
        bad("plot-metrics", "input-format", ["plot-metrics", "somedir"], "somedir"),
        bad("plot-metrics", "input-binary", ["plot-metrics", "run_binary"], "run_binary"),
        bad("plot-metrics", "input-format", ["plot-metrics", "run_no_json"], "run_no_json"),
        bad("plot-metrics", "option-value", ["plot-metrics", "run", "--x", "time"], "--x"),
        bad("plot-metrics", "option-value", ["plot-metrics", "run", "--label", "a", "--label",
                                             "b"], "--label"),
    ]
    # ---------------------------------------------------------------- score-variants
    sv_ref = ("-r", "myco.fa.gz", *TINY)
    c += [
        usage("score-variants", "usage", ["score-variants", "variants.vcf"], "--reference"),
        usage("score-variants", "usage", [*SV, "--window", "wide"], "--window"),
        usage("score-variants", "range", [*SV, "--window", "0"], "--window"),
        usage("score-variants", "range", [*SV, "--window", "-8"], "--window"),
        usage("score-variants", "range", [*SV, "--batch-size", "0"], "--batch-size"),
        usage("score-variants", "range", [*SV, "--workers", "100000"], "--workers"),
        bad("score-variants", "input-missing", ["score-variants", "missing.vcf", *sv_ref],
            "missing.vcf"),
        bad("score-variants", "input-directory", ["score-variants", "somedir", *sv_ref],
            "somedir"),
        bad("score-variants", "input-empty", ["score-variants", "empty.txt", *sv_ref],
            "empty.txt"),
        bad("score-variants", "input-binary", ["score-variants", "binary.bin", *sv_ref],
            "binary.bin"),
        bad("score-variants", "input-format", ["score-variants", "phix.fa", *sv_ref], "phix.fa"),
        bad("score-variants", "vcf-pos", ["score-variants", "pos_superscript.vcf", *sv_ref],
            "pos_superscript.vcf"),
        bad("score-variants", "vcf-pos", ["score-variants", "pos_fullwidth.vcf", *sv_ref],
            "pos_fullwidth.vcf"),
        bad("score-variants", "vcf-pos", ["score-variants", "pos_zero.vcf", *sv_ref],
            "pos_zero.vcf"),
        # the last record is the bad one: nothing is scored or written first
        bad("score-variants", "vcf-pos", ["score-variants", "last_beyond_contig.vcf", *sv_ref],
            "999999"),
        bad("score-variants", "reference-missing", ["score-variants", "variants.vcf", "-r",
                                                    "missing.fa", *TINY], "missing.fa"),
        bad("score-variants", "reference-binary", ["score-variants", "variants.vcf", "-r",
                                                   "binary.bin", *TINY], "binary.bin"),
        bad("score-variants", "reference-empty", ["score-variants", "variants.vcf", "-r",
                                                  "empty.txt", *TINY], "empty.txt"),
        bad("score-variants", "reference-contigs", ["score-variants", "variants.vcf", "-r",
                                                    "phix.fa", *TINY], "phix.fa"),
        bad("score-variants", "chrom-map", [*SV, "--chrom-map", "binary.bin"], "binary.bin"),
        bad("score-variants", "chrom-map", [*SV, "--chrom-map", "missing.tsv"], "missing.tsv"),
        bad("score-variants", "chrom-map", [*SV, "--chrom-map", "chrom_map_one_column.tsv"],
            "chrom_map_one_column.tsv"),
        bad("score-variants", "output-parent-file", [*SV, "-o", "afile/out.vcf"], "afile"),
        bad("score-variants", "output-parent-file", [*SV, "-o", "afile/out.vcf.gz"], "afile"),
        bad("score-variants", "output-directory", [*SV, "-o", "somedir"], "somedir"),
        bad("score-variants", "output-is-input", [*SV, "-o", "variants.vcf"], "also an input"),
        bad("score-variants", "output-empty-name", [*SV, "-o", ""], "output"),
        bad("score-variants", "output-disk-full", [*SV, "-o", "/dev/full"], "/dev/full"),
        bad("score-variants", "model-dir", ["score-variants", "variants.vcf", "-r", "myco.fa.gz",
                                            "-m", "models/indivisible"], "num_heads"),
        bad("score-variants", "model-dir", ["score-variants", "variants.vcf", "-r", "myco.fa.gz",
                                            "-m", "models/corrupt"], "model.safetensors"),
        usage("score-variants", "range", [*SV, "--upstream", "-1"], "--upstream"),
        bad("score-variants", "annotation", [*SV, "--annotation", "missing.gff"], "missing.gff"),
        bad("score-variants", "annotation", [*SV, "--annotation", "binary.bin"], "binary.bin"),
        bad("score-variants", "annotation", [*SV, "--annotation", "phix.fa"], "phix.fa"),
        usage("score-variants", "option-value", [*SV, "--genetic-code", "4"], "--annotation"),
        usage("score-variants", "option-value", [*SV, "--upstream", "500"], "--annotation"),
        usage("score-variants", "option-value", [*SV, "--genome-stream", "--no-prefix-reuse"],
              "--genome-stream"),
        usage("score-variants", "range", [*SV, "--annotation", "subset.gff.gz",
                                          "--genetic-code", "7"], "--genetic-code"),
    ]
    # ---------------------------------------------------------------- score-dms
    sd_in = ("-s", "dms_context.fa", "--cds", SD[5], *TINY)
    c += [
        usage("score-dms", "usage", ["score-dms", "scores.csv", "-s", "dms_context.fa"], "--cds"),
        usage("score-dms", "usage", [*SD, "-o", "o.tsv", "--window", "x"], "--window"),
        usage("score-dms", "range", [*SD, "-o", "o.tsv", "--window", "0"], "--window"),
        usage("score-dms", "range", [*SD, "-o", "o.tsv", "--batch-size", "0"], "--batch-size"),
        usage("score-dms", "range", [*SD, "-o", "o.tsv", "--genetic-code", "7"],
              "--genetic-code"),
        bad("score-dms", "option-value", [*SD[:5], "bogus", *SD[6:], "-o", "o.tsv"], "bogus"),
        bad("score-dms", "option-value", [*SD[:5], "100-5000000:+", *SD[6:], "-o", "o.tsv"],
            "100-5000000"),
        bad("score-dms", "input-missing", ["score-dms", "missing.csv", *sd_in, "-o", "o.tsv"],
            "missing.csv"),
        bad("score-dms", "input-binary", ["score-dms", "binary.bin", *sd_in, "-o", "o.tsv"],
            "binary.bin"),
        bad("score-dms", "input-empty", ["score-dms", "empty.txt", *sd_in, "-o", "o.tsv"],
            "empty.txt"),
        bad("score-dms", "input-format", ["score-dms", "scores_no_score.csv", *sd_in, "-o",
                                          "o.tsv"], "score"),
        bad("score-dms", "option-value", [*SD, "-o", "o.tsv", "--score-column", "fitness"],
            "fitness"),
        bad("score-dms", "option-value", [*SD, "-o", "o.tsv", "--score-column", "hgvs_nt"],
            "scores.csv: column 'hgvs_nt' holds no finite number for any scorable variant"),
        bad("score-dms", "input-format", ["score-dms", "scores_wrong_ref.csv", *sd_in, "-o",
                                          "o.tsv"],
            "scores_wrong_ref.csv: none of its 10 variants can be scored (reference base "
            "mismatch 10); check --cds and the sequence"),
        bad("score-dms", "sequence", ["score-dms", "scores.csv", "-s", "missing.fa",
                                      *sd_in[2:], "-o", "o.tsv"], "missing.fa"),
        bad("score-dms", "sequence", ["score-dms", "scores.csv", "-s", "two.fa", *sd_in[2:],
                                      "-o", "o.tsv"], "two.fa"),
        bad("score-dms", "sequence", ["score-dms", "scores.csv", "-s", "binary.bin",
                                      *sd_in[2:], "-o", "o.tsv"], "binary.bin"),
        bad("score-dms", "output-parent-file", [*SD, "-o", "afile/o.tsv"], "afile"),
        bad("score-dms", "output-directory", [*SD, "-o", "somedir"], "somedir"),
        bad("score-dms", "output-disk-full", [*SD, "-o", "full.tsv"], "full.tsv"),
        # the table is not left behind when the metrics cannot be written
        bad("score-dms", "output-disk-full", [*SD, "-o", "o.tsv", "--metrics", "full.tsv"],
            "full.tsv"),
        bad("score-dms", "output-twice", [*SD, "-o", "o.tsv", "--metrics", "o.tsv"],
            "o.tsv: named by both --output and --metrics"),
        bad("score-dms", "output-is-input", [*SD, "-o", "o.tsv", "--metrics", "scores.csv"],
            "also an input"),
        bad("score-dms", "model-dir", [*SD[:6], "-m", "models/list", "-o", "o.tsv"],
            "config.json"),
        usage("score-dms", "usage", [*SD, "-o", "o.tsv", "--damaging", "sideways"],
              "--damaging"),
        usage("score-dms", "usage", [*SD, "-o", "o.tsv", "--manifest", "labels.tsv"],
              "--manifest"),
        bad("score-dms", "manifest", ["score-dms", "--manifest", "missing.tsv", "-o", "o.tsv",
                                      *TINY], "missing.tsv"),
        bad("score-dms", "manifest", ["score-dms", "--manifest", "labels.tsv", "-o", "o.tsv",
                                      *TINY], "labels.tsv"),
        bad("score-dms", "output-parent-file", [*SD, "-o", "o.tsv", "--metrics",
                                                "afile/m.json"], "afile"),
    ]
    # ---------------------------------------------------------------- essentiality
    es_in = ("subset.fna.gz", "subset.gff.gz", *TINY)
    c += [
        usage("essentiality", "usage", ["essentiality"], "genome"),
        usage("essentiality", "usage", [*ES, "--window", "x"], "--window"),
        usage("essentiality", "range", [*ES, "--window", "0"], "--window"),
        usage("essentiality", "range", [*ES, "--batch-size", "0"], "--batch-size"),
        usage("essentiality", "range", [*ES, "--offset", "-3"], "--offset"),
        usage("essentiality", "option-value", [*ES, "--genome-stream", "--no-prefix-reuse"],
              "--genome-stream"),
        bad("essentiality", "option-value", [*ES, "--offset", "4"], "--offset"),
        bad("essentiality", "input-missing", ["essentiality", "missing.fa", "subset.gff.gz",
                                              *TINY], "missing.fa"),
        bad("essentiality", "input-binary", ["essentiality", "binary.bin", "subset.gff.gz",
                                             *TINY], "binary.bin"),
        bad("essentiality", "input-empty", ["essentiality", "empty.txt", "subset.gff.gz",
                                            *TINY], "empty.txt"),
        bad("essentiality", "annotation", ["essentiality", "subset.fna.gz", "missing.gff",
                                           *TINY], "missing.gff"),
        bad("essentiality", "annotation", ["essentiality", "subset.fna.gz", "binary.bin",
                                           *TINY], "binary.bin"),
        bad("essentiality", "annotation", ["essentiality", "subset.fna.gz", "phix.fa", *TINY],
            "phix.fa"),
        bad("essentiality", "option-value", [*ES, "--feature", "tRNA_nope"], "tRNA_nope"),
        bad("essentiality", "labels", [*ES, "--labels", "missing.tsv"], "missing.tsv"),
        bad("essentiality", "labels", [*ES, "--labels", "binary.bin"], "binary.bin"),
        bad("essentiality", "labels", [*ES, "--labels", "empty.txt"], "empty.txt"),
        bad("essentiality", "option-value", [*ES, "--metrics", "m.json"], "--labels"),
        bad("essentiality", "output-format", [*ES, "--labels", "labels.tsv", "--plot",
                                              "roc.xyz"], "roc.xyz"),
        bad("essentiality", "chrom-map", [*ES, "--chrom-map", "binary.bin"], "binary.bin"),
        bad("essentiality", "output-parent-file", [*ES, "-o", "afile/rank.tsv"], "afile"),
        bad("essentiality", "output-directory", [*ES, "-o", "somedir"], "somedir"),
        bad("essentiality", "output-parent-file", [*ES, "-o", "rank.tsv", "--labels",
                                                   "labels.tsv", "--plot", "afile/roc.png"],
            "afile"),
        bad("essentiality", "output-parent-file", [*ES, "-o", "rank.tsv", "--labels",
                                                   "labels.tsv", "--metrics", "afile/m.json"],
            "afile"),
        bad("essentiality", "output-twice", [*ES, "-o", "rank.tsv", "--labels", "labels.tsv",
                                             "--metrics", "rank.tsv"],
            "rank.tsv: named by both --output and --metrics"),
        bad("essentiality", "output-twice", [*ES, "-o", "rank.png", "--labels", "labels.tsv",
                                             "--plot", "rank.png"],
            "rank.png: named by both --output and --plot"),
        bad("essentiality", "output-disk-full", [*ES, "-o", "rank.tsv", "--labels",
                                                 "labels.tsv", "--plot", "full.png"],
            "full.png"),
        bad("essentiality", "model-dir", ["essentiality", *es_in[:2], "-m", "models/headdim"],
            "headdim"),
        usage("essentiality", "range", [*ES, "--bootstrap", "-1"], "--bootstrap"),
        usage("essentiality", "range", [*ES, "--labels", "labels.tsv", "--bootstrap",
                                        "1000000000000000000000"], "--bootstrap"),
        bad("essentiality", "annotation", ["essentiality", "subset.fna.gz", "bad_phase.gff",
                                           *TINY], "bad_phase.gff: line 6: phase must be 0, 1, 2"),
        usage("essentiality", "usage", [*ES, "--manifest", "labels.tsv"], "--manifest"),
        bad("essentiality", "annotation", ["essentiality", "subset.fna.gz", *TINY],
            "subset.fna.gz"),
        bad("essentiality", "manifest", ["essentiality", "--manifest", "missing.tsv", *TINY],
            "missing.tsv"),
        bad("essentiality", "manifest", ["essentiality", "--manifest", "binary.bin", *TINY],
            "binary.bin"),
        bad("essentiality", "manifest", ["essentiality", "--manifest", "labels.tsv", *TINY],
            "labels.tsv"),
    ]
    # ---------------------------------------------------------------- segments
    c += [
        usage("segments", "usage", ["segments"], "genome"),
        usage("segments", "usage", [*SG, "--context", "long"], "--context"),
        usage("segments", "range", [*SG, "--context", "0"], "--context"),
        usage("segments", "range", [*SG, "--context", "-1"], "--context"),
        usage("segments", "range", [*SG, "--stride", "0"], "--stride"),
        usage("segments", "range", [*SG, "--workers", "100000"], "--workers"),
        usage("segments", "range", [*SG, "--batch-size", "0"], "--batch-size"),
        bad("segments", "option-value", [*SG, "--stage", "3"], "--stage"),
        bad("segments", "option-value", [*SG, "--stage", "first"], "first"),
        bad("segments", "input-missing", ["segments", "missing.fa", *TINY], "missing.fa"),
        bad("segments", "input-binary", ["segments", "binary.bin", *TINY], "binary.bin"),
        bad("segments", "input-empty", ["segments", "empty.txt", *TINY], "empty.txt"),
        bad("segments", "input-directory", ["segments", "somedir", *TINY], "somedir"),
        bad("segments", "input-truncated", ["segments", "truncated.fa.gz", *TINY],
            "truncated.fa.gz"),
        bad("segments", "input-invalid", ["segments", "invalid_second.fa", *TINY],
            "record second"),
        bad("segments", "output-parent-file", [*SG, "-o", "afile/x.bed"], "afile"),
        bad("segments", "output-parent-file", [*SG, "-o", "x.bed", "--bedgraph",
                                               "afile/x.bedgraph"], "afile"),
        bad("segments", "output-directory", [*SG, "-o", "somedir"], "somedir"),
        bad("segments", "output-is-input", [*SG, "-o", "phix.fa.gz"], "also an input"),
        bad("segments", "output-disk-full", [*SG, "-o", "x.bed", "--stage", "1", "--bedgraph",
                                             "full.tsv"], "full.tsv"),
        bad("segments", "output-os-error", [*SG, "-o", "/proc/dnahnet.bed"], "/proc"),
        bad("segments", "model-dir", ["segments", "phix.fa.gz", "-m", "models/noconfig"],
            "config.json"),
    ]
    # ---------------------------------------------------------------- segments-report
    c += [
        usage("segments-report", "usage", list(SR), "--output"),
        bad("segments-report", "output-nonempty-dir", [*SR, "-o", "report"], "report"),
        bad("segments-report", "output-nonempty-dir", [*SR, "-o", "."], "."),
        bad("segments-report", "output-is-file", [*SR, "-o", "afile"], "afile"),
        bad("segments-report", "output-parent-file", [*SR, "-o", "afile/report"], "afile"),
        bad("segments-report", "input-missing", ["segments-report", "missing.bed", *SR[2:],
                                                 "-o", "rep"], "missing.bed"),
        bad("segments-report", "input-binary", ["segments-report", "binary.bin", *SR[2:],
                                                "-o", "rep"], "binary.bin"),
        bad("segments-report", "input-format", ["segments-report", "bad_coords.bed", *SR[2:],
                                                "-o", "rep"], "bad_coords.bed"),
        bad("segments-report", "input-format", ["segments-report", "phix.fa", *SR[2:], "-o",
                                                "rep"], "phix.fa"),
        bad("segments-report", "input-format", ["segments-report", "three_columns.bed",
                                                *SR[2:], "-o", "rep"],
            "three_columns.bed: line 2: interval name '' is not stage1/stage2/"),
        bad("segments-report", "annotation", [*SR[:2], "-a", "missing.gff", "-g",
                                              "subset.fna.gz", "-o", "rep"], "missing.gff"),
        bad("segments-report", "annotation", [*SR[:2], "-a", "binary.bin", "-g",
                                              "subset.fna.gz", "-o", "rep"], "binary.bin"),
        bad("segments-report", "genome", [*SR[:4], "-g", "missing.fa", "-o", "rep"],
            "missing.fa"),
        bad("segments-report", "genome", [*SR[:4], "-g", "phix.fa", "-o", "rep"], "phix.fa"),
    ]
    # ---------------------------------------------------------------- embed, bigWig tracks
    regions = ("--genome", "subset.fna.gz")
    c += [
        usage("embed", "usage", ["embed", "phix.fa.gz", *TINY], "--output"),
        usage("embed", "usage", [*EM, "--pool", "max"], "--pool"),
        usage("embed", "usage", [*EM, "--dtype", "int8"], "--dtype"),
        usage("embed", "usage", [*EM, "--stage", "one"], "--stage"),
        usage("embed", "range", [*EM, "--stage", "-1"], "--stage"),
        usage("embed", "range", [*EM, "--context", "0"], "--context"),
        usage("embed", "range", [*EM, "--batch-size", "0"], "--batch-size"),
        bad("embed", "option-value", [*EM, "--stage", "3"], "--stage 3"),
        bad("embed", "option-value", [*EM, "--pool", "chunks"], "--pool chunks"),
        bad("embed", "option-value", [*EM_IN], "--regions"),
        bad("embed", "input-missing", [*EM_IN, "missing.fa"], "missing.fa"),
        bad("embed", "input-binary", [*EM_IN, "binary.bin"], "binary.bin"),
        bad("embed", "input-empty", [*EM_IN, "empty.txt"], "empty.txt"),
        bad("embed", "input-truncated", [*EM_IN, "truncated.fa.gz"], "truncated.fa.gz"),
        bad("embed", "input-invalid", [*EM_IN, "invalid.fa"], "invalid.fa"),
        bad("embed", "input-invalid", [*EM_IN, "invalid_second.fa"], "record second"),
        bad("embed", "input-format", [*EM_IN, "--regions", "bad_coords.bed", *regions],
            "bad_coords.bed"),
        bad("embed", "input-format", [*EM_IN, "--regions", "chunks.bed", "--genome", "phix.fa"],
            "chunks.bed"),
        # embed has no --chrom-map: the advice must not name it
        bad("embed", "input-format", [*EM_IN, "--regions", "chunks.bed", "--genome", "phix.fa"],
            "(rename the contigs of one file to match the other)"),
        bad("embed", "input-missing", [*EM_IN, "--regions", "missing.bed", *regions],
            "missing.bed"),
        bad("embed", "input-missing", [*EM_IN, "--regions", "chunks.bed"], "--genome"),
        bad("embed", "output-format", [*EM[:-1], "e.txt"], "e.txt"),
        bad("embed", "output-format", [*EM[:-1], "-"], ".npz"),
        bad("embed", "output-parent-file", [*EM[:-1], "afile/e.npz"], "afile"),
        bad("embed", "output-directory", [*EM[:-1], "somedir"], "somedir"),
        bad("embed", "output-os-error", [*EM[:-1], "/proc/e.npz"], "/proc"),
        bad("embed", "model-dir", [*EM, "-m", "models/noconfig"], "--config"),
        bad("embed", "model-dir", ["embed", "phix.fa.gz", "-m", "models/noconfig", "-o",
                                   "e.npz"], "config.json"),
        bad("segments", "output-prefix", [*SG, "-o", "x.bed", "--bigwig", "somedir"], "somedir"),
        bad("segments", "output-parent-file", [*SG, "-o", "x.bed", "--bigwig", "afile/t"],
            "afile"),
        bad("likelihood", "output-parent-file", [*LK, "--bigwig", "afile/t"], "afile"),
        bad("likelihood", "output-prefix", [*LK, "--bigwig", "-"], "-: --bigwig writes files"),
        bad("segments", "output-prefix", [*SG, "-o", "x.bed", "--bigwig", "-"], "--bigwig"),
        # one stage: the bedGraph is the name given; two: x.stage1.bedgraph, x.stage2...
        bad("segments", "output-twice", [*SG, "--stage", "1", "-o", "x.bed", "--bedgraph",
                                         "x.bed"], "x.bed: named by both --output and --bedgraph"),
        bad("segments", "output-twice", [*SG, "-o", "x.stage1.bedgraph", "--bedgraph",
                                         "x.bedgraph"], "--bedgraph (stage 1)"),
        # a --bigwig prefix's files collide with the other outputs too
        bad("segments", "output-twice", [*SG, "-o", "k.stage1.boundary_prob.bw", "--bigwig",
                                         "k"], "named by both --output and --bigwig"),
        bad("segments", "output-twice", [*SG, "--stage", "1", "-o", "s.bed", "--bedgraph",
                                         "k.stage1.boundary_prob.bw", "--bigwig", "k"],
            "named by both --bedgraph (stage 1) and --bigwig (stage1.boundary_prob)"),
        bad("likelihood", "output-twice", [*LK, "-o", "k.logprob.bw", "--bigwig", "k"],
            "k.logprob.bw: named by both --output and --bigwig (logprob)"),
        # a folder given as a prefix (the trailing / would be lost as a Path)
        bad("likelihood", "output-prefix", [*LK, "--bigwig", "newdir/"],
            "newdir/: --bigwig takes a file prefix"),
        bad("likelihood", "output-empty", [*LK, "-o", ""],
            "an output file name is empty (or '.'); give a file name"),
    ]
    # ---------------------------------------------------------------- demo
    c += [
        usage("demo", "usage", ["demo", "--bogus"], "--bogus"),
        usage("demo", "usage", ["demo", "--threads", "many"], "--threads"),
        usage("demo", "range", ["demo", "--threads", "-1"], "--threads"),
        usage("demo", "range", ["demo", "--threads", "100000"], "--threads"),
        bad("demo", "output-nonempty-dir", ["demo", "--out", "report"], "report"),
        bad("demo", "output-is-file", ["demo", "--out", "afile"], "afile"),
        bad("demo", "output-parent-file", ["demo", "--out", "afile/demo"], "afile"),
    ]
    # ---------------------------------------------------------------- check-model
    cm = ("check-model", "-g", "subset.fna.gz", "-a", "subset.gff.gz", *TINY)
    c += [
        usage("check-model", "usage", ["check-model", *TINY], "--genome"),
        usage("check-model", "usage", [*cm, "--max-bases", "lots"], "--max-bases"),
        usage("check-model", "range", [*cm, "--max-bases", "-1"], "--max-bases"),
        usage("check-model", "range", [*cm, "--sample-window", "0"], "--sample-window"),
        usage("check-model", "range", [*cm, "--snvs", "-1"], "--snvs"),
        usage("check-model", "range", [*cm, "--window", "0"], "--window"),
        usage("check-model", "range", [*cm, "--batch-size", "0"], "--batch-size"),
        usage("check-model", "range", [*cm, "--sample-seed", "-1"], "--sample-seed"),
        usage("check-model", "range", [*cm, "--sample-seed", "18446744073709551616"],
              "--sample-seed"),
        usage("check-model", "range", [*cm, "--genetic-code", "7"], "--genetic-code"),
        bad("check-model", "input-missing", ["check-model", "-g", "missing.fa", "-a",
                                             "subset.gff.gz", *TINY], "missing.fa"),
        bad("check-model", "input-binary", ["check-model", "-g", "binary.bin", "-a",
                                            "subset.gff.gz", *TINY], "binary.bin"),
        bad("check-model", "annotation", ["check-model", "-g", "subset.fna.gz", "-a",
                                          "binary.bin", *TINY], "binary.bin"),
        bad("check-model", "output-parent-file", [*cm, "-o", "afile/report.json"], "afile"),
        bad("check-model", "output-directory", [*cm, "-o", "somedir"], "somedir"),
        bad("check-model", "model-dir", ["check-model", *cm[1:5], "-m", "models/list"],
            "config.json"),
    ]
    # ---------------------------------------------------------------- the application
    c += [
        usage("dnahnet", "usage", ["no-such-command"], "no-such-command"),
        usage("dnahnet", "usage", ["--bogus"], "--bogus"),
    ]
    return c


CASES = _cases()


def _params():
    seen: dict[str, int] = {}
    for case in CASES:
        key = f"{case.command}-{case.kind}"
        seen[key] = seen.get(key, 0) + 1
        yield pytest.param(case, id=f"{key}-{seen[key]}")


def test_the_matrix_is_large_and_covers_every_command():
    from dnahnet_cli.app import COMMANDS

    assert len(CASES) >= 150
    assert set(COMMANDS) <= {case.command for case in CASES}


@pytest.mark.parametrize("case", list(_params()))
def test_bad_input(case: Case, workspace: Path, capfd):
    from dnahnet_cli.app import run

    before = snapshot(workspace)
    code = run(list(case.args))
    out, err = capfd.readouterr()
    lines = err.splitlines()
    assert "Traceback" not in err, err
    assert code == case.code, f"exit {code}, stderr: {err!r}"
    assert len(lines) == 1 and lines[0].startswith("dnahnet: error: "), err
    assert case.says in lines[0], f"{lines[0]!r} does not name {case.says!r}"
    assert out == "", f"standard output before the error: {out[:200]!r}"
    assert changes(before, snapshot(workspace)) == []
    assert leftovers(tempfile.gettempdir()) == []


def count_cases() -> dict[str, dict[str, int]]:
    """Cases by command and class (for the report)."""
    table: dict[str, dict[str, int]] = {}
    for case in CASES:
        table.setdefault(case.command, {}).setdefault(case.kind, 0)
        table[case.command][case.kind] += 1
    return table


# ------------------------------------------------------------------ real processes


def dnahnet(args, cwd: Path, stdin=None, tmpdir: Path | None = None, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.run(
        [sys.executable, "-m", "dnahnet_cli", *args], cwd=cwd, env=env, stdin=stdin,
        capture_output=True, **kwargs,
    )


def one_error_line(stderr: bytes) -> str:
    text = stderr.decode()
    lines = text.splitlines()
    assert "Traceback" not in text, text
    assert len(lines) == 1 and lines[0].startswith("dnahnet: error: "), text
    return lines[0]


@pytest.mark.parametrize("stop, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_run_ends_cleanly_and_removes_what_it_created(template, tmp_path, stop, code):
    """SIGTERM (timeout, cluster schedulers) or Ctrl-C mid-write: no temporary name and no
    directory made for -o left behind; SIGTERM says so in one line."""
    work = tmp_path / "work"
    shutil.copytree(template, work, symlinks=True)
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    shutil.copy(POOL / "phage_T4_NC_000866.1.fna.gz", work / "t4.fa.gz")
    before = snapshot(work)
    env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(scratch))
    process = subprocess.Popen(
        [sys.executable, "-m", "dnahnet_cli", "likelihood", "t4.fa.gz", *TINY, "--context",
         "512", "--per-position", "-o", "new/dir/ll.tsv"],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # a shell's background job inherits SIGINT ignored: give the command Ctrl-C back
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not list((work / "new" / "dir").glob(".ll.tsv.*")):
        assert process.poll() is None, process.communicate()[1].decode()
        assert time.monotonic() < deadline, "the temporary output never appeared"
        time.sleep(0.05)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code
    if stop == signal.SIGTERM:
        assert "terminated" in one_error_line(stderr)
    else:
        assert stderr == b""
    assert changes(before, snapshot(work)) == []
    assert leftovers(str(scratch)) == []


@contextlib.contextmanager
def stop_inside_torch(stop: int):
    """Send ``stop`` inside the Python code torch's C++ calls back while safetensors loads
    weights (the second ``UntypedStorage.__getitem__``): torch clears the stop's exception
    there and raises ValueError ("could not determine the shape ...") instead."""
    calls = []

    def profile(frame, event, arg):
        code = frame.f_code
        if event == "call" and code.co_name == "__getitem__" and code.co_filename.endswith(
            os.path.join("torch", "storage.py")
        ):
            calls.append(code)
            if len(calls) == 2:
                signal.raise_signal(stop)

    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(None)


@pytest.mark.parametrize("stop, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_that_a_library_turns_into_its_own_error_is_still_a_stop(
    workspace, capfd, request, stop, code
):
    """CI once printed that ValueError's traceback for a Ctrl-C while a model loaded."""
    from safetensors.torch import load_file

    from dnahnet_cli.app import run
    from dnahnet_core.interrupts import stops_raise

    # pytest run as a script's background job inherits Ctrl-C ignored, and a command keeps
    # an ignored Ctrl-C ignored: give this process Ctrl-C back, as a terminal has it
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    with pytest.raises(ValueError, match="could not determine the shape"):
        with stops_raise(), stop_inside_torch(stop):
            load_file(workspace / "models" / "good" / "model.safetensors")
    before = snapshot(workspace)
    with stop_inside_torch(stop):
        status = run(["likelihood", "phix.fa.gz", "--model", "models/good", "-o", "new/ll.tsv"])
    assert status == code
    stderr = capfd.readouterr().err.encode()
    if stop == signal.SIGTERM:
        assert "terminated" in one_error_line(stderr)
    else:
        assert stderr == b""
    assert changes(before, snapshot(workspace)) == []


def test_dash_and_dev_stdin_read_standard_input(template, tmp_path):
    """`-` (and /dev/stdin, a pipe) give the same result as the file, compressed or not."""
    work = tmp_path / "work"
    shutil.copytree(template, work, symlinks=True)
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    args = [*TINY, "--context", "1024"]
    from_file = dnahnet(["likelihood", "phix.fa.gz", *args], work)
    assert from_file.returncode == 0, from_file.stderr.decode()
    assert from_file.stdout.decode().splitlines()[1].startswith("phiX174\t5386\t")
    for name, source in [("-", "phix.fa.gz"), ("-", "phix.fa"), ("/dev/stdin", "phix.fa.gz")]:
        with open(work / source, "rb") as handle:
            piped = subprocess.Popen(["cat"], stdin=handle, stdout=subprocess.PIPE)
            result = dnahnet(["likelihood", name, *args], work, stdin=piped.stdout,
                             tmpdir=scratch)
            piped.wait()
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == from_file.stdout
    assert leftovers(str(scratch)) == []


def test_a_vcf_on_standard_input_is_scored_like_the_file(template, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(template, work, symlinks=True)
    args = ["-r", "myco.fa.gz", *TINY, "--window", "128", "-o"]
    from_file = dnahnet(["score-variants", "variants.vcf", *args, "file.vcf"], work)
    assert from_file.returncode == 0, from_file.stderr.decode()
    with open(work / "variants.vcf", "rb") as handle:
        piped = dnahnet(["score-variants", "-", *args, "piped.vcf"], work, stdin=handle)
    assert piped.returncode == 0, piped.stderr.decode()

    def records(name):
        return [line for line in (work / name).read_text().splitlines()
                if not line.startswith("#")]

    assert records("piped.vcf") == records("file.vcf") and len(records("file.vcf")) == 32


def test_empty_standard_input_is_one_clear_line(template, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(template, work, symlinks=True)
    before = snapshot(work)
    result = dnahnet(["likelihood", "-", *TINY, "-o", "ll.tsv"], work, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert "<stdin>: empty file" in one_error_line(result.stderr)
    assert changes(before, snapshot(work)) == []


def test_a_genome_or_assay_on_standard_input_is_labelled_stdin(monkeypatch):
    """essentiality's genome column and score-dms's assay name say <stdin>, not the name
    of the private copy ("input")."""
    from dnahnet_core.io.atomic import end_command
    from dnahnet_core.io.streams import STDIN_NAME, input_path
    from dnahnet_core.tasks.dms import DmsAssay
    from dnahnet_core.tasks.essentiality import GenomeInput

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b">a\nACGT\n")))
    try:
        copy = input_path("-")
        assert copy.name != STDIN_NAME
        assert GenomeInput(genome=copy).label == STDIN_NAME
        assert DmsAssay(scores=copy, sequence=copy, cds="1-3:+").label == STDIN_NAME
        assert GenomeInput(genome=Path("dir/e_coli.fna.gz")).label == "e_coli"
    finally:
        end_command()


def test_a_closed_pipe_is_not_an_error_message(tmp_path):
    """`dnahnet likelihood ... | head -c 100`: no traceback, no error line."""
    reader = subprocess.Popen(["head", "-c", "100"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(  # 5,386 rows: more than a pipe holds
        [sys.executable, "-m", "dnahnet_cli", "likelihood", str(POOL / "phage_phiX174.fna.gz"),
         *TINY, "--per-position"],
        stdout=reader.stdin, stderr=subprocess.PIPE, env=env, cwd=tmp_path, timeout=300,
    )
    reader.stdin.close()
    reader.wait()
    assert result.returncode != 0 and result.stderr == b""


def test_dash_is_standard_output_and_a_link_is_written_through(workspace, capfd):
    from dnahnet_cli.app import run

    args = ["score-dms", *SD[1:]]
    assert run([*args, "-o", "-"]) == 0
    to_stdout = capfd.readouterr().out
    (workspace / "results").mkdir()
    (workspace / "dms.tsv").symlink_to("results/dms.tsv")
    assert run([*args, "-o", "dms.tsv"]) == 0
    capfd.readouterr()
    assert (workspace / "dms.tsv").is_symlink()
    assert (workspace / "results" / "dms.tsv").read_text() == to_stdout
    assert to_stdout.splitlines()[0].split("\t")[0] and len(to_stdout.splitlines()) == 31


def test_a_report_directory_is_replaced_only_with_overwrite(workspace, capfd):
    from dnahnet_cli.app import run

    assert run([*SR, "-o", "report"]) == 1
    assert (workspace / "report" / "notes.txt").read_text() == "the user's notes\n"
    assert run([*SR, "-o", "report", "--overwrite"]) == 0
    capfd.readouterr()
    assert not (workspace / "report" / "notes.txt").exists()
    assert (workspace / "report" / "codon_position.png").stat().st_size > 0


def test_a_bgzipped_vcf_is_written_through_a_link_with_its_index(workspace, capfd):
    from dnahnet_cli.app import run

    (workspace / "results").mkdir()
    (workspace / "scored.vcf.gz").symlink_to("results/scored.vcf.gz")
    assert run([*SV, "-o", "scored.vcf.gz"]) == 0
    capfd.readouterr()
    assert (workspace / "scored.vcf.gz").is_symlink()
    assert sorted(os.listdir(workspace / "results")) == ["scored.vcf.gz", "scored.vcf.gz.tbi"]
    with gzip.open(workspace / "results" / "scored.vcf.gz", "rt") as handle:
        records = [line for line in handle if not line.startswith("#")]
    assert len(records) == 32 and all("DNAHNET_LLR=" in line for line in records)


@pytest.mark.parametrize("temperature", ["1e-320", "1e-45", "1e308"])
def test_any_finite_temperature_samples(workspace, capfd, temperature):
    """A temperature far from 1 is greedy or uniform sampling, not NaN probabilities."""
    from dnahnet_cli.app import run

    assert run([*GN, "--temperature", temperature]) == 0
    out, err = capfd.readouterr()
    assert err == "" and len(out.splitlines()[1]) == 20


def test_an_upstream_longer_than_the_contig_is_the_whole_contig(workspace, capfd):
    """--upstream past every contig end reaches no further than the contig (no array of
    that many positions)."""
    from dnahnet_cli.app import run

    args = [*SV, "--annotation", "subset.gff.gz"]
    assert run([*args, "--upstream", "100000000000000000000", "-o", "huge.tsv"]) == 0
    assert run([*args, "--upstream", "10000000", "-o", "contig.tsv"]) == 0
    capfd.readouterr()
    assert (workspace / "huge.tsv").read_text() == (workspace / "contig.tsv").read_text()


@pytest.mark.parametrize("failure", [
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
                 "allocate memory: you tried to allocate 5587550820 bytes. Error code 12"),
    MemoryError("Unable to allocate 7.45 GiB for an array"),
])
def test_running_out_of_memory_is_one_line(workspace, capfd, monkeypatch, failure):
    """A window or batch too large to hold (score-variants --window 1e20 on a 265-kb
    contig asks the CPU allocator for 5.6 GB) ends in one line, not torch's traceback."""
    import dnahnet_core.tasks.generate as task
    from dnahnet_cli.app import run

    def allocate(*args, **kwargs):
        raise failure

    monkeypatch.setattr(task, "generate", allocate)
    assert run(list(GN)) == 1
    out, err = capfd.readouterr()
    assert out == "" and "out of memory" in one_error_line(err.encode())


def test_other_runtime_errors_are_not_called_out_of_memory(workspace, monkeypatch):
    import dnahnet_core.tasks.generate as task
    from dnahnet_cli.app import run

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(task, "generate", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        run(list(GN))


def test_segments_bedgraph_named_like_the_bed_is_no_clash_with_two_stages(workspace, capfd):
    """Two stages write x.bed.stage1.bedgraph and x.bed.stage2.bedgraph, not x.bed."""
    from dnahnet_cli.app import run

    assert run([*SG, "-o", "x.bed", "--bedgraph", "x.bed"]) == 0
    assert capfd.readouterr().err == ""
    assert (workspace / "x.bed").read_text().startswith("phiX174\t")
    assert sorted(p.name for p in workspace.glob("x.bed.stage*")) == [
        "x.bed.stage1.bedgraph", "x.bed.stage2.bedgraph"]


def test_a_named_pipe_gets_the_bgzipped_vcf_in_place(workspace, capfd):
    """-o a FIFO named *.vcf.gz: the compressed VCF goes into the pipe; the pipe stays a pipe
    (not replaced by a regular file) and no index appears beside it."""
    import stat
    import threading

    from dnahnet_cli.app import run

    os.mkfifo(workspace / "scored.vcf.gz")
    received: list[bytes] = []
    reader = threading.Thread(
        target=lambda: received.append((workspace / "scored.vcf.gz").read_bytes()), daemon=True
    )
    reader.start()
    assert run([*SV, "-o", "scored.vcf.gz"]) == 0
    reader.join(timeout=60)
    capfd.readouterr()
    assert stat.S_ISFIFO(os.stat(workspace / "scored.vcf.gz").st_mode)
    assert not (workspace / "scored.vcf.gz.tbi").exists()
    records = [line for line in gzip.decompress(received[0]).decode().splitlines()
               if not line.startswith("#")]
    assert len(records) == 32 and all("DNAHNET_LLR=" in line for line in records)


def test_old_mac_line_breaks_a_byte_order_mark_and_soft_masking_score_alike(workspace, capfd):
    """A FASTA with CR-only line breaks (classic Mac OS), a byte-order mark (Windows
    editors) and lower-case bases is the same genome: same rows, not an empty record.
    --device is read case-insensitively (CPU)."""
    from dnahnet_cli.app import run

    text = (workspace / "phix.fa").read_text()
    header, sequence = text.split("\n", 1)
    mac = "\ufeff" + header + "\r" + sequence.lower().replace("\n", "\r")
    (workspace / "mac.fa").write_bytes(mac.encode())
    args = [*TINY, "--context", "512"]
    assert run(["likelihood", "phix.fa", *args, "--device", "cpu"]) == 0  # the same arithmetic
    expected = capfd.readouterr().out
    assert run(["likelihood", "mac.fa", *args, "--device", "CPU"]) == 0
    out, err = capfd.readouterr()
    assert err == "" and out == expected and "\tNA\t" not in out


def test_an_unsorted_vcf_is_written_without_an_index_and_says_why(workspace, capfd):
    """tabix refuses records out of order: one warning naming the user's file and the first
    record out of place, not htslib's line about a temporary file."""
    from dnahnet_cli.app import run

    lines = (workspace / "variants.vcf").read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#")]
    body = [line for line in lines if not line.startswith("#")]
    (workspace / "unsorted.vcf").write_text("".join(header + body[::-1]))
    assert run([SV[0], "unsorted.vcf", *SV[2:], "-o", "scored.vcf.gz"]) == 0
    err = capfd.readouterr().err
    [warning] = [line for line in err.splitlines() if "tabix" in line or "E::" in line]
    assert warning.startswith("warning: scored.vcf.gz: written without a tabix index (")
    assert "sorted by position" in warning and "bcftools sort" in warning
    assert ".scored.vcf.gz." not in err and "/tmp" not in err
    assert not (workspace / "scored.vcf.gz.tbi").exists()
    records = [line for line in gzip.decompress((workspace / "scored.vcf.gz").read_bytes())
               .decode().splitlines() if not line.startswith("#")]
    assert len(records) == len(body)
