"""DDP on CPU: 2 gloo processes under torchrun match one process with the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

POOL = Path(__file__).parent / "data" / "pool"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None)
    return env


def _prepare(out: Path) -> Path:
    # seed 11 puts T4 + phiX174 in train and lambda in val
    subprocess.run(
        [sys.executable, "-m", "dnahnet_cli", "prepare", *map(str, sorted(POOL.glob("*.fna.gz"))),
         "--out", str(out), "--fragment-length", "128", "--val-fraction", "0.3",
         "--test-fraction", "0.3", "--seed", "11"],
        check=True, capture_output=True, env=_env(),
    )
    return out


def _train_args(data: Path, out: Path) -> list[str]:
    return ["train", "--data", str(data), "--config", "dnahnet-tiny", "--out", str(out),
            "--max-steps", "3", "--batch-size", "2", "--log-every", "1", "--eval-every", "3",
            "--eval-fragments", "6", "--device", "cpu", "--lr", "3e-3"]


def _records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed beside this python")
def test_two_gloo_processes_match_one_process(tmp_path):
    data = _prepare(tmp_path / "data")
    torchrun = str(Path(sys.executable).parent / "torchrun")
    two = subprocess.run(
        [torchrun, "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={_free_port()}", "-m", "dnahnet_cli",
         *_train_args(data, tmp_path / "two")],
        capture_output=True, text=True, env=_env(), timeout=240,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run(
        [sys.executable, "-m", "dnahnet_cli", *_train_args(data, tmp_path / "one"),
         "--grad-accum", "2"],
        capture_output=True, text=True, env=_env(), timeout=240,
    )
    assert one.returncode == 0, one.stderr[-3000:]

    a, b = _records(tmp_path / "one", "train"), _records(tmp_path / "two", "train")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3]
    for ra, rb in zip(a, b, strict=True):
        assert ra["tokens"] == rb["tokens"] == ra["step"] * 4 * 128  # global batch 4 x 128 nt
        for key in ("loss", "bpb", "ratio_loss", "grad_norm", "compression_0", "mean_prob_1"):
            assert rb[key] == pytest.approx(ra[key], rel=1e-4, abs=1e-6), key
    assert a[-1]["loss"] < a[0]["loss"]
    va, vb = _records(tmp_path / "one", "val"), _records(tmp_path / "two", "val")
    assert vb[-1]["bpb"] == pytest.approx(va[-1]["bpb"], rel=1e-4)
    wa = load_file(str(tmp_path / "one" / "model.safetensors"))
    wb = load_file(str(tmp_path / "two" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], rtol=1e-4, atol=1e-5)
    # only rank 0 wrote: one checkpoint, one record per step
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == ["step-000003"]


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed beside this python")
def test_two_gloo_processes_stop_together_at_the_time_limit(tmp_path):
    data = _prepare(tmp_path / "data")
    torchrun = str(Path(sys.executable).parent / "torchrun")
    args = _train_args(data, tmp_path / "run")
    args[args.index("--max-steps") + 1] = "500"
    done = subprocess.run(
        [torchrun, "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={_free_port()}", "-m", "dnahnet_cli", *args, "--time-limit", "0.002"],
        capture_output=True, text=True, env=_env(), timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]  # no rank waited on a collective alone
    steps = [r["step"] for r in _records(tmp_path / "run", "train")]
    assert 1 <= steps[-1] < 500 and steps == list(range(1, steps[-1] + 1))
    saved = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert saved == [f"step-{steps[-1]:06d}"]
    assert "paused at step" in done.stderr
