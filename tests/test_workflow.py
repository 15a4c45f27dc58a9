"""The Snakemake workflow: a dry run of the full DAG, and a tiny real run on bundled data."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def _snakemake(tmp_path, *extra):
    env = dict(
        os.environ, OMP_NUM_THREADS="1", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    )
    return subprocess.run(
        [
            str(SNAKEMAKE),
            "-s",
            str(REPO / "workflows" / "Snakefile"),
            "--configfile",
            str(REPO / "workflows" / "config.ci.yaml"),
            "--config",
            f"out={tmp_path / 'wf'}",
            "--cores",
            "2",
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is a dev dependency")
def test_workflow_dry_run_plans_every_rule(tmp_path):
    result = _snakemake(tmp_path, "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    for rule in ("prepare", "train", "evaluate", "essentiality", "segments", "segments_report"):
        assert rule in result.stdout


@pytest.mark.slow
@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is a dev dependency")
def test_workflow_tiny_real_run(tmp_path):
    result = _snakemake(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "wf"
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert 0 < evaluation["bpb"] < 4 and evaluation["split"] == "test"
    bed = (out / "segments" / "phage_vt2_sakai.bed").read_text().splitlines()
    assert bed and all(line.split("\t")[0] == "NC_000902.1" for line in bed)
    ranking = (out / "essentiality" / "phage_vt2_sakai.tsv").read_text().splitlines()
    assert ranking[0].startswith("locus_tag") and len(ranking) > 50
    assert (out / "segments" / "phage_vt2_sakai_report").is_dir()
    shutil.rmtree(out)


@pytest.mark.slow
@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is a dev dependency")
def test_workflow_train_rule_resumes_only_the_same_run(tmp_path):
    """Changed training arguments start a new run (not a resume of the old one); re-running
    the rule on a finished run with the same arguments gives back its model files."""
    run = tmp_path / "wf" / "model" / "dnahnet-tiny"
    assert _snakemake(tmp_path, "--until", "train").returncode == 0
    changed = tmp_path / "config.yaml"
    changed.write_text((REPO / "workflows" / "config.ci.yaml").read_text()
                       .replace("batch_size: 2", "batch_size: 1"))
    result = _snakemake(tmp_path, "--until", "train", "--configfile", str(changed))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["batch_size"] == 1
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    trained = [(r["step"], r["tokens"]) for r in records if r["kind"] == "train"]
    assert trained == [(s, s * 1024) for s in (1, 2, 3, 4)]  # a new run at batch 1 x 1,024 nt
    result = _snakemake(tmp_path, "--until", "train", "--configfile", str(changed),
                        "--forcerun", "train")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "nothing to do" in (tmp_path / "wf" / "logs" / "train.log").read_text()
    assert (run / "model.safetensors").is_file()
