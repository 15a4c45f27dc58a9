"""benchmarks/compute_matched.py at CI size: three tiny architectures, one FLOPs budget."""

import json
import subprocess
import sys

import pytest
from conftest import REPO, TEST_DATA

BUDGET = 5e9
TINY_BASELINES = {
    "transformer-tiny": {"arch_layout": ["T2"], "d_model": [64], "d_intermediate": [128],
                         "num_heads": [2], "target_ratios": [], "lr_multipliers": [1.0]},
    "mamba2-tiny": {"arch_layout": ["m3"], "d_model": [64], "d_intermediate": [0],
                    "num_heads": [1], "target_ratios": [], "lr_multipliers": [1.0],
                    "ssm": {"d_state": 16, "headdim": 16, "expand": 2, "d_conv": 4,
                            "chunk_size": 32}},
}


def test_tiny_compute_matched_run(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from compute_matched import COLUMNS

    configs = []
    for name, config in TINY_BASELINES.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"name": name, "description": "test", **config}))
        configs.append(str(path))
    out = tmp_path / "cm"
    annotated = TEST_DATA / "annotated"
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "compute_matched.py"),
         "--genomes", *map(str, sorted((TEST_DATA / "pool").glob("*.fna.gz"))),
         "--fragment-length", "512", "--budget", str(BUDGET), "--batch-size", "2",
         "--models", ",".join(["dnahnet-tiny", *configs]), "--eval-points", "2",
         "--eval-fragments", "4", "--out", "cm",  # relative to where it is run
         "--check-genome", str(annotated / "mycoplasma_subset.fna.gz"),
         "--check-annotation", str(annotated / "mycoplasma_subset.gff.gz"),
         "--check-args", "--snvs 3 --max-bases 2048 --sample-window 1024 --window 128"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads((out / "compute_matched.json").read_text())
    assert [m["model"] for m in result["models"]] == [
        "dnahnet-tiny", "transformer-tiny", "mamba2-tiny"]
    steps = set()
    for model in result["models"]:
        # every run stops at the budget within one step, counted in its own FLOPs
        assert model["steps_done"] == model["steps"]
        assert abs(model["training_flops"] - BUDGET) <= model["flops_per_step"]
        assert model["tokens"] == model["steps"] * 2 * 512
        assert model["curve"][-1]["training_flops"] == model["training_flops"]
        assert model["val"]["bpb"] == pytest.approx(model["curve"][-1]["bpb"], abs=1e-3)
        assert set(model["check"]["snvs"]["auroc"]) == {"nonsense_vs_synonymous",
                                                         "missense_vs_synonymous"}
        steps.add(model["steps"])
    assert len(steps) > 1  # different FLOPs per step give different step counts
    assert len(result["models"][0]["check"]["boundaries"]) == 2
    assert result["models"][1]["check"]["boundaries"] == []  # a baseline has no stages
    table = (out / "compute_matched.md").read_text().splitlines()
    assert table[0] == "| " + " | ".join(COLUMNS) + " |"
    assert [row.split(" | ")[0] for row in table[2:]] == [
        "| dnahnet-tiny", "| transformer-tiny", "| mamba2-tiny", "| trivial baselines"]
    assert all(row.count("|") == len(COLUMNS) + 1 for row in table)
    assert (out / "val_bpb_vs_flops.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
