"""scripts/gpu_check.sh on a CPU: its dry run, its install step, its refusals (docs/gpu.md)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.sh"
STEPS = ["env", "install", "fast-path", "gpu-tests", "smoke", "torchrun", "inference",
         "lengths", "profile", "graphs", "train-speed", "suite"]


def run_script(script: Path, *args, env_extra: dict | None = None, timeout: int = 900):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run(["bash", str(script), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=REPO)


def gpu_check(*args, **options):
    return run_script(SCRIPT, *args, **options)


def summary(report: str) -> dict[str, str]:
    """step -> PASS/FAIL/SKIP, from the report's summary table."""
    rows = re.findall(r"^\| ([a-z-]+) \| (PASS|FAIL|SKIP) \|", report, flags=re.M)
    return dict(rows)


def mamba_like_wheel(folder: Path) -> Path:
    """A wheel shaped like mamba-ssm built without its CUDA extension: the package's
    __init__ imports the extension eagerly, the Triton module needs nothing of it."""
    path = folder / "mamba_ssm-2.3.2.post1-py3-none-any.whl"
    dist = "mamba_ssm-2.3.2.post1.dist-info"
    files = {
        "mamba_ssm/__init__.py": '__version__ = "2.3.2.post1"\n\n'
                                 "from mamba_ssm.ops.selective_scan_interface import x\n",
        "mamba_ssm/ops/__init__.py": "",
        "mamba_ssm/ops/selective_scan_interface.py": "import selective_scan_cuda\n",
        "mamba_ssm/ops/triton/__init__.py": "",
        "mamba_ssm/ops/triton/ssd_combined.py": "def mamba_chunk_scan_combined():\n"
                                                "    return 'triton'\n",
        # with triton installed (as on a GPU) the dry run imports this one too
        "mamba_ssm/ops/triton/layernorm_gated.py": "def rmsnorm_fn():\n    return 'triton'\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: mamba_ssm\nVersion: 2.3.2.post1\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{name},,\n" for name in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as whl:
        for name, text in files.items():
            whl.writestr(name, text)
    return path


def test_install_step_trims_mamba_init_so_the_triton_modules_import(tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    wheels.mkdir()
    mamba_like_wheel(wheels)
    untrimmed = tmp_path / "untrimmed"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--target", str(untrimmed), *map(str, wheels.glob("*.whl"))], check=True)
    before = subprocess.run(
        [sys.executable, "-c", "import mamba_ssm.ops.triton.ssd_combined"],
        env=dict(os.environ, PYTHONPATH=str(untrimmed)), capture_output=True, text=True)
    assert "No module named 'selective_scan_cuda'" in before.stderr  # the failure it fixes

    done = gpu_check("--dry-run", "--steps", "install", "--wheels", wheels, tmp_path / "out",
                     env_extra={"SITE": str(site)})
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "out" / "gpu-check.md").read_text()
    assert summary(report) == {"install": "PASS"}
    assert "mamba_ssm/__init__.py trimmed" in report
    assert (site / "mamba_ssm" / "__init__.py").read_text() == '__version__ = "2.3.2.post1"\n'
    after = subprocess.run(
        [sys.executable, "-c", "from mamba_ssm.ops.triton.ssd_combined import "
         "mamba_chunk_scan_combined as f; print(f())"],
        env=dict(os.environ, PYTHONPATH=str(site)), capture_output=True, text=True)
    assert after.stdout.strip() == "triton", after.stderr


def test_install_step_never_replaces_a_folder_it_did_not_make(tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    wheels.mkdir()
    mamba_like_wheel(wheels)
    site.mkdir()
    (site / "mine.txt").write_text("keep me")
    done = gpu_check("--dry-run", "--steps", "install", "--wheels", wheels, tmp_path / "out",
                     env_extra={"SITE": str(site)})
    assert done.returncode == 1
    report = (tmp_path / "out" / "gpu-check.md").read_text()
    assert summary(report) == {"install": "FAIL"}
    assert "holds files this script did not install" in report
    assert (site / "mine.txt").read_text() == "keep me"


def test_bad_arguments_are_one_line_errors(tmp_path):
    for args, message in [
        (["--steps", "env,warp", tmp_path], "unknown step 'warp'"),
        (["--budget", "ten", tmp_path], "--budget takes whole seconds"),
        (["--dry-run"], "give the folder for the report"),
    ]:
        done = gpu_check(*args)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    foreign = tmp_path / "gpu-check.md"
    foreign.write_text("my notes\n")
    done = gpu_check("--dry-run", "--steps", "env", tmp_path)
    assert done.returncode == 2 and "is not a report of this script" in done.stderr
    assert foreign.read_text() == "my notes\n"


@pytest.mark.slow
def test_quick_dry_run_writes_every_section(tmp_path):
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    done = gpu_check("--dry-run", "--quick", "--wheels", empty, tmp_path / "out")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (tmp_path / "out" / "gpu-check.md").read_text()
    assert report.startswith("# dnahnet GPU check\n")
    assert "finished in" in report.splitlines()[2]
    # with triton and mamba_ssm on the path, the dry run runs the kernels in the interpreter
    interpreted = all(importlib.util.find_spec(name) for name in ("triton", "mamba_ssm"))
    assert summary(report) == {
        "env": "PASS", "install": "SKIP", "fast-path": "PASS" if interpreted else "SKIP",
        "gpu-tests": "PASS",
        "smoke": "PASS", "torchrun": "PASS", "inference": "PASS", "lengths": "PASS",
        "profile": "PASS", "graphs": "SKIP", "train-speed": "PASS", "suite": "SKIP"}
    headings = re.findall(r"^## \d+\. .* — (?:PASS|FAIL|SKIP)$", report, flags=re.M)
    assert len(headings) == len(STEPS)
    assert "SKIP: no wheels in" in report
    assert ("kernels ran in Triton's interpreter" if interpreted
            else "SKIP: no CUDA in a dry run") in report
    assert "SKIP: --quick" in report  # the whole suite: not from inside the suite
    assert "SKIPPED [1] tests/test_fast_path.py" in report  # the GPU tests ran, and skipped
    smoke = re.search(r"^\| dnahnet-tiny \| \d+ \| 2 \| ([\d.]+) → ([\d.]+) \| ([\d.]+) \|",
                      report, flags=re.M)
    assert smoke, report
    assert 0 < float(smoke.group(3)) < 4  # validation bits/nt of a 4-letter alphabet, untrained
    assert re.search(r"^\| dnahnet-tiny \| 1,024 \| fp32 \|", report, flags=re.M)  # inference
    assert re.search(r"^\| dnahnet-tiny \| 2,048 \| [\d.]+ \| [\d,]+ \|", report, flags=re.M)
    assert re.search(r"^\| dnahnet-tiny \| 2,048 \| the sweep's end", report, flags=re.M)
    # profile: on a CPU no GPU time, and one host sync a stage (dnahnet-tiny has two)
    assert re.search(r"^\| dnahnet-tiny \| 1,024 \| [\d.]+ \| - \| - \| 0 \| 2 \|", report,
                     flags=re.M)
    assert re.search(r"^\| `aten::mm` \| \d+ \|", report, flags=re.M)
    assert re.search(r"^dnahnet-tiny +cpu +fp32 ", report, flags=re.M)  # train-speed
    # graphs: the graph logic's tests ran on the CPU, their CUDA checks skipped
    graphs = report[report.index("`pytest tests/test_graphs.py tests/test_train_graphs.py`:"):]
    assert re.search(r"\b\d+ passed, 4 skipped(, \d+ deselected)? in", graphs.split("````", 2)[1])
    assert "SKIP: no CUDA in a dry run: the graph logic's CPU tests ran" in report
    assert "resumed run: train records at steps [1, 2]" in report
    assert "stopped at step 1 (--stop-after), then --resume" in report


# ---------------------------------------------------------------- scripts/gpu_train_default.sh

TRAIN_DEFAULT = REPO / "scripts" / "gpu_train_default.sh"
PART_LIMIT = 15 * 2**20  # a device call returns files of at most 16 MiB


def train_default(*args, **options):
    return run_script(TRAIN_DEFAULT, *args, **{"timeout": 600, **options})


def unpack(out: Path, into: Path) -> Path:
    parts = sorted(out.glob("gpu-default.tar.gz.part-*"))
    assert parts and all(p.stat().st_size <= PART_LIMIT for p in parts)
    into.mkdir()
    subprocess.run(["tar", "-xz", "-C", str(into)], input=b"".join(p.read_bytes() for p in parts),
                   check=True)
    return into / "run"


@pytest.mark.parametrize("args, says", [
    (["--minutes", "six", "out"], "--minutes takes a number"),
    (["--batch-size", "0", "out"], "--batch-size takes a whole number"),
    (["--schedule-minutes", "ten", "out"], "--schedule-minutes takes a number"),
    (["--bogus", "out"], "unknown option --bogus"),
    ([], "give the folder for the parts"),
])
def test_train_default_refuses_bad_options(args, says, tmp_path):
    done = train_default(*args)
    assert done.returncode == 2 and says in done.stderr, done.stderr


@pytest.mark.slow
def test_train_default_dry_run_sends_back_the_run_and_continues_it(tmp_path):
    import torch

    from dnahnet_core.model import load_model

    run, out = tmp_path / "run", tmp_path / "out"
    args = ("--dry-run", "--minutes", "0.05", "--batch-size", "2", "--run", run, out)
    first = train_default(*args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "probing the pace" in first.stdout  # the script tees everything to stdout
    back = unpack(out, tmp_path / "back1")
    assert {p.name for p in back.iterdir()} == {
        "config.json", "model.safetensors", "metadata.json", "metrics.jsonl", "run.json",
        "training_data_manifest.json", "logs"}
    sent, trained = load_model(back).state_dict(), load_model(run).state_dict()
    for name, value in trained.items():  # the float16-rounded weights of the run
        assert torch.equal(sent[name], value.half().float()), name
    step = json.loads((back / "metadata.json").read_text())["step"]
    assert json.loads((back / "run.json").read_text())["time_limit"] == 0.05

    second = train_default(*args)  # the next call continues the run on the same machine
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "continuing" in second.stdout and "resuming" in second.stdout
    back = unpack(out, tmp_path / "back2")
    assert json.loads((back / "metadata.json").read_text())["step"] > step
    assert len(list((back / "logs").iterdir())) == 2


def test_length_sweep_stops_a_model_at_its_first_pass_over_the_time_limit():
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "length_sweep.py"), "--device", "cpu",
         "--precision", "fp32", "--models", "dnahnet-tiny", "--max-exp", "14", "--repeats", "1",
         "--max-seconds", "0"],
        capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout.splitlines()[-1])
    assert [(r["length"], r["status"]) for r in rows] == [
        (1024, "ok"), (2048, rows[1]["status"])]
    assert rows[1]["status"].startswith("not run: 1,024 nt took")
    assert "| dnahnet-tiny | 1,024 | not run: 1,024 nt took" in done.stdout


def test_length_sweep_never_measures_the_warm_up(monkeypatch, capsys):
    """On an H100 the first pass of dnahnet-2stage-r32 at 1,024 nt took 27.7 s, compiling
    and autotuning kernels, and the sweep took it for the model's speed and stopped there.
    Here the first pass at each length is 100 s, the others 0.01 s."""
    import argparse
    import types

    import torch

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import length_sweep

    seen = set()

    def forward_seconds(model, tokens, precision):
        first = tokens.shape[1] not in seen
        seen.add(tokens.shape[1])
        return (100.0 if first else 0.01), None

    fake = types.SimpleNamespace(forward_seconds=forward_seconds,
                                 load=lambda name: torch.nn.Linear(1, 1))
    monkeypatch.setitem(sys.modules, "inference_speed", fake)
    args = argparse.Namespace(child="x", device="cpu", precision="fp32", min_exp=10, max_exp=11,
                              find_limit=False, repeats=3, max_seconds=5.0, cuda_graphs=False)
    length_sweep.child(args)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["length"], r["status"], r["seconds"], r["warmup_s"]) for r in rows] == [
        (1024, "ok", 0.01, 100.0), (2048, "ok", 0.01, 100.0)]


@pytest.mark.slow
def test_train_default_halves_the_batch_while_the_probe_runs_out_of_memory(tmp_path):
    python = tmp_path / "python"  # a GPU with room for 2 fragments a step, not 8 or 4
    python.write_text(
        "#!/usr/bin/env bash\n"
        'if [[ " $* " == *" --max-steps "* && " $* " =~ " --batch-size "(8|4)" " ]]; then\n'
        '    echo "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 9 GiB" >&2\n'
        "    exit 1\n"
        "fi\n"
        f'exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    run, out = tmp_path / "run", tmp_path / "out"
    done = train_default("--dry-run", "--minutes", "0.03", "--batch-size", "8", "--run", run, out,
                         env_extra={"PYTHON": str(python)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert [int(b) for b in re.findall(r"probing the pace: \d+ steps of \S+, batch (\d+)",
                                       done.stdout)] == [8, 4, 2]
    assert json.loads((run / "run.json").read_text())["batch_size"] == 2
