"""`dnahnet demo` end to end on the bundled data with the packaged default model (slow)."""

import gzip
import json
import os
import subprocess
import sys

import pysam
import pytest

from dnahnet_cli.demo import demo_steps
from dnahnet_core.model import default_model_dir, load_model


def test_default_model_is_packaged_and_small():
    directory = default_model_dir()
    weights = directory / "model.safetensors"
    assert weights.exists() and (directory / "MODEL_CARD.md").exists()
    assert weights.stat().st_size <= 25 * 1024 * 1024
    model = load_model(None)
    trained = json.loads((directory / "metadata.json").read_text())["train_options"]
    assert model.config.name == trained["config"]  # the weights are the card's model
    assert all(p.dtype.is_floating_point for p in model.parameters())


def test_demo_steps_use_only_bundled_data(tmp_path):
    data = default_model_dir().parent / "demo_data"
    for _, args, _ in demo_steps(tmp_path, data):
        for arg in args:
            assert "shared" not in arg


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "dnahnet_cli", "demo", "--out", str(out)],
        capture_output=True, text=True, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "demo finished" in result.stderr
    with pysam.VariantFile(str(out / "variants.scored.vcf.gz")) as vcf:
        records = list(vcf)
    source = [line for line in open(default_model_dir().parent / "demo_data" / "demo_variants.vcf")
              if not line.startswith("#")]
    assert len(records) == len(source)
    assert any("DNAHNET_LLR" in r.info for r in records)
    ranking = (out / "essentiality.tsv").read_text().splitlines()
    assert ranking[0].split("\t")[:3] == ["locus_tag", "gene", "product"]
    with gzip.open(default_model_dir().parent / "demo_data" / "phage_vt2_sakai.fna.gz", "rt") as fa:
        length = sum(len(line.strip()) for line in fa if not line.startswith(">"))
    bed = [line.split("\t") for line in (out / "segments" / "chunks.bed").read_text().splitlines()
           if not line.startswith("track")]
    stage1 = [row for row in bed if row[3] == "stage1"]
    assert int(stage1[0][1]) == 0 and int(stage1[-1][2]) == length
    assert (out / "segments" / "report").is_dir() and (out / "tiny_run_curves.png").exists()
    # the tiny run validates on the phage (a genome of its own split) beside its baselines
    kinds = [json.loads(line)["kind"] for line in open(out / "tiny_run" / "metrics.jsonl")]
    assert kinds[0] == "baseline" and kinds.count("val") == 2
    assert "split is empty" not in result.stderr
