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
