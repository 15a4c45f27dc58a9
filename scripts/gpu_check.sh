#!/usr/bin/env bash
# Check dnahnet on a GPU machine and write ONE markdown report (docs/gpu.md, issue 16).
#
#   bash scripts/gpu_check.sh [options] REPORT_DIR      # make gpu-check; REPORT_DIR/gpu-check.md
#
# Steps, in order (each a report section with its log's tail; PASS, FAIL or SKIP):
#   env          GPU, driver, Python, torch, triton, package versions
#   install      the wheels of scripts/fetch_gpu_wheels.sh (--wheels, .whl) into $SITE, offline
#   fast-path    mamba-ssm's Triton kernels import and dnahnet will use them
#                (--dry-run: run them in Triton's CPU interpreter where triton imports)
#   gpu-tests    tests/test_fast_path.py (none may skip on a GPU)
#   smoke        `dnahnet train` a few bf16 steps of every preset on the bundled test genomes,
#                and of dnahnet-paper-small with --cuda-graphs (on a GPU)
#   torchrun     an NCCL all-reduce under torchrun, and `dnahnet train` under torchrun
#                (nproc 1) stopped half-way and resumed
#   inference    benchmarks/inference_speed.py --device cuda
#   lengths      benchmarks/length_sweep.py --device cuda: 2^10 nt and up, bf16, forward
#                only, peak memory, the longest length that fits
#   profile      benchmarks/gpu_profile.py --device cuda: per forward, GPU kernel time against
#                wall time, kernels launched, host syncs, the ops with the most host time
#   graphs       forwards replayed from CUDA graphs (dnahnet_core/model/graphs.py):
#                tests/test_graphs.py (replays vs eager forwards) and
#                tests/test_train_graphs.py (graphed training steps vs eager ones), then
#                inference_speed.py and length_sweep.py with --cuda-graphs
#   train-speed  benchmarks/train_speed.py --device cuda --cuda-graphs (pure PyTorch and mamba-ssm
#                paths, and mamba-ssm's with forward and backward replayed from CUDA graphs)
#   suite        the whole `pytest -m "not slow"` suite with CUDA visible (last: the longest
#                and least GPU-specific step is the one a short budget drops)
# Options:
#   --dry-run      on a CPU: every step that can run there runs on the CPU, CUDA-only checks
#                  are reported as SKIP (how this script is tested: tests/test_gpu_check.py)
#   --quick        one preset, 2 steps, small benchmarks, no whole suite
#   --steps LIST   comma-separated subset of the steps above
#   --budget S     seconds for the whole check (default 540 on a GPU, as one device call may
#                  run 600; none with --dry-run): a step that no longer fits is skipped, one
#                  that overruns is stopped; the report is rewritten after every step
#   --wheels DIR   wheels to install (default .whl)
# Environment: PYTHON (default python3; .venv/bin/python with --dry-run), SITE (install
# target, default /tmp/dnahnet-gpu-site), PYTEST_WORKERS (default 8 on a GPU).
# Exit status 0 when no step failed.
set -uo pipefail

STEPS_ALL="env install fast-path gpu-tests smoke torchrun inference lengths profile graphs train-speed suite"
REPORT_NAME=gpu-check.md
SITE_MARK=.dnahnet-gpu-site  # marks an install folder as this script's
HEADER="# dnahnet GPU check"

die() { echo "gpu_check: error: $*" >&2; exit 2; }

# ---------------------------------------------------------------- the steps (child processes)
# Each step writes its report text to $WORK/$name.md and its log to stdout; exit 0 = PASS,
# 77 = SKIP (reason in $WORK/$name.skip), anything else = FAIL.

body() { cat >>"$WORK/$STEP.md"; }
skip() { echo "$*" >"$WORK/$STEP.skip"; exit 77; }
fence() { echo '````text'; cat; echo '````'; }  # four: a log may hold a three-backtick block

step_env() {
    local ok=0
    {
        echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), host $(hostname), kernel $(uname -r)"
        echo "- repository: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no git here')"
        echo "- mode: $([ "$DRY_RUN" = 1 ] && echo 'dry run on the CPU' || echo 'GPU')$(
            [ "$QUICK" = 1 ] && echo ', quick')"
    } | body
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv |
            fence | body
    else
        echo "- nvidia-smi: not found" | body
    fi
    "$PY" - <<'PY' | tee -a "$WORK/$STEP.md" || ok=1
import importlib.metadata as md
import platform
import sys

import torch

def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "missing"

print(f"- python {platform.python_version()} ({sys.executable}), torch {torch.__version__} "
      f"(CUDA {torch.version.cuda}), triton {version('triton')}")
print("- " + ", ".join(f"{n} {version(n)}" for n in
      ("numpy", "pandas", "typer", "rich", "einops", "safetensors", "transformers", "pytest",
       "pytest-xdist")))
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"- CUDA devices: {torch.cuda.device_count()}; device 0: {p.name}, "
          f"{p.total_memory / 2**30:.1f} GiB, capability {p.major}.{p.minor}, "
          f"{p.multi_processor_count} multiprocessors; bf16 supported: "
          f"{torch.cuda.is_bf16_supported()}")
else:
    print("- CUDA: not available")
PY
    if [ "$DRY_RUN" = 0 ] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
        echo "**No CUDA device is visible: on a CPU use --dry-run.**" | body
        return 1
    fi
    return $ok
}

wheel_python_version() {  # 3.12 from the first cpNNN tag of the wheels, else $PY's
    local tagged
    tagged=$(ls "$WHEELS"/*.whl | grep -o -- '-cp3[0-9]*-' | head -n 1 | sed 's/-cp3\([0-9]*\)-/3.\1/')
    [ -n "$tagged" ] && echo "$tagged" || "$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

trim_mamba_init() {
    # mamba_ssm/__init__.py imports selective_scan_cuda (the CUDA extension we skip building)
    # and, through its model classes, transformers; keep only its version line so that
    # mamba_ssm.ops.triton.* import on their own (docs/gpu.md).
    local init="$1/mamba_ssm/__init__.py"
    [ -f "$init" ] || return 0
    grep '^__version__' "$init" >"$init.trimmed" && mv "$init.trimmed" "$init"
}

step_install() {
    if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        [ "$DRY_RUN" = 1 ] && skip "no wheels in $WHEELS: run scripts/fetch_gpu_wheels.sh"
        echo "**No wheels in $WHEELS**: run \`bash scripts/fetch_gpu_wheels.sh\` on a machine" \
            "with network and carry \`.whl\` to this one." | body
        return 1
    fi
    local target=() pyver
    pyver=$(wheel_python_version)
    if [ "$DRY_RUN" = 1 ]; then
        # The wheels are for the GPU's Python: check that pip accepts them for it, offline.
        target=(--only-binary=:all: --python-version "$pyver" --implementation cp
                --abi "cp${pyver/./}" --abi abi3 --abi none --platform any)
        for n in $(seq 17 39); do target+=(--platform "manylinux_2_${n}_x86_64"); done
        target+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
    fi
    echo "- wheels: $(ls "$WHEELS"/*.whl | xargs -n 1 basename | tr '\n' ' ')" | body
    if [ -e "$SITE" ] && [ ! -f "$SITE/$SITE_MARK" ] && [ -n "$(ls -A "$SITE")" ]; then
        echo "**$SITE holds files this script did not install**: set SITE to a new folder" | body
        return 1
    fi
    rm -rf "$SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        "${target[@]}" --target "$SITE" "$WHEELS"/*.whl || {
        echo "**pip could not install the wheels** (see the log)" | body; return 1; }
    trim_mamba_init "$SITE"
    touch "$SITE/$SITE_MARK"
    echo "- installed into $SITE$([ "$DRY_RUN" = 1 ] && echo " for CPython $pyver (pip's" \
        "cross-platform check; binaries not imported here)"); mamba_ssm/__init__.py trimmed" \
        "to its version line" | body
    if [ "$DRY_RUN" = 1 ]; then
        if "$PY" -c "import triton, einops" 2>/dev/null; then
            PYTHONPATH="$SITE_PYTHONPATH" "$PY" -c "from mamba_ssm.ops.triton.ssd_combined import \
mamba_chunk_scan_combined; from mamba_ssm.ops.triton.layernorm_gated import rmsnorm_fn" ||
                return 1
            echo "- mamba_ssm's Triton modules import (trimmed __init__)" | body
        else
            echo "- SKIP importing mamba_ssm here: this Python has no triton/einops" | body
        fi
        return 0
    fi
    PYTHONPATH="$SITE_PYTHONPATH" "$PY" - <<'PY' | tee -a "$WORK/$STEP.md"
import importlib.metadata as md

import Bio  # noqa: F401
import gffutils  # noqa: F401
import pyBigWig  # noqa: F401
import pysam  # noqa: F401
from mamba_ssm.ops.triton.layernorm_gated import rmsnorm_fn  # noqa: F401
from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined  # noqa: F401

import dnahnet_cli.app  # noqa: F401

names = ("mamba_ssm", "pysam", "biopython", "gffutils", "pyfaidx", "pyBigWig")
print("- import OK: dnahnet_cli, " + ", ".join(f"{n} {md.version(n)}" for n in names))
PY
}

step_fast_path() {
    [ "$DRY_RUN" = 1 ] && { interpreted_fast_path; return; }
    "$PY" - <<'PY' | tee -a "$WORK/$STEP.md"
import sys
import traceback

import torch

from dnahnet_core.model import fast_path

ok = torch.cuda.is_available() and fast_path.available()
print(f"- torch.cuda.is_available(): {torch.cuda.is_available()}; "
      f"fast_path.available(): {fast_path.available()}")
if not ok:
    print("**dnahnet would run the pure PyTorch path**; the import error:\n\n```text")
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined  # noqa: F401
        from mamba_ssm.ops.triton.layernorm_gated import rmsnorm_fn  # noqa: F401
    except Exception:
        print(traceback.format_exc().strip())
    print("```")
sys.exit(0 if ok else 1)
PY
}

interpreted_fast_path() {
    # No CUDA here, but with triton and the installed mamba_ssm the kernels can still run,
    # in Triton's CPU interpreter: the agreement checks on a tiny model (tests/triton_interpreter.py)
    PYTHONPATH="$SITE_PYTHONPATH" "$PY" \
        -c "import triton, einops, mamba_ssm.ops.triton.ssd_combined" 2>/dev/null ||
        skip "no CUDA in a dry run, and no triton or installed mamba_ssm for" \
            "Triton's interpreter: the pure PyTorch path is what runs here"
    echo "- no CUDA: mamba-ssm's kernels ran in Triton's interpreter on the CPU against the" \
        "pure path (\`tests/triton_interpreter.py\`; fp32: log-probs, boundaries," \
        "gradients; the RMSNorms and our Mamba2 conv kernel also in bf16; and, as CUDA" \
        "graphs need, no op of a bf16 training step with fixed chunk widths reads back" \
        "to the host):" |
        body
    PYTHONPATH="$SITE_PYTHONPATH" "$PY" tests/triton_interpreter.py | sed '/^$/d; s/^/  - /' |
        tee -a "$WORK/$STEP.md"
    [ "${PIPESTATUS[0]}" = 0 ] || {
        echo "**mamba-ssm's kernels in Triton's interpreter disagree with the pure path**" \
            "(see the log)" | body; return 1; }
}

pytest_summary() {  # the summary line of a pytest log, and its SKIPPED reasons
    grep -E "^(SKIPPED|FAILED|ERROR) " "$1" | head -n 40
    grep -E "(passed|failed|error|skipped|deselected|no tests ran)( |,|$)" "$1" | tail -n 1
}

agreement_tests() {  # pytest on $@ (a test file, options) into $WORK/$STEP.log; the report
    # keeps its measured differences (-s: the checks print `agreement ...` lines) and summary
    local log="$WORK/$STEP.log" status
    # not the slow interpreter checks: the fast-path step's business, and minutes here
    "$PY" -m pytest -p no:cacheprovider -rs -v -s -p tests.failures_at_once -m "not slow" \
        "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    { echo "\`pytest $*\`:"; { grep "^agreement " "$log"; pytest_summary "$log"; } |
        fence; } | body
    return "$status"
}

step_gpu_tests() {
    local log="$WORK/gpu-tests.log"
    agreement_tests tests/test_fast_path.py || return 1
    if [ "$DRY_RUN" = 0 ] && grep -q "^SKIPPED" "$log"; then
        echo "**FAIL: GPU tests were skipped on a GPU machine** (mamba_ssm or CUDA missing)" | body
        return 1
    fi
}

step_suite() {
    local log="$WORK/suite.log" workers status
    [ "$QUICK" = 1 ] && skip "--quick"
    if [ "$DRY_RUN" = 1 ]; then
        workers=(-p no:xdist)
    else
        workers=(-n "${PYTEST_WORKERS:-8}")
    fi
    # test_gpu_check.py runs this script: not from inside it
    "$PY" -m pytest -p no:cacheprovider -rs -p tests.failures_at_once -m "not slow" \
        "${workers[@]}" --ignore=tests/test_gpu_check.py 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    { echo "\`pytest -m \"not slow\" ${workers[*]}\` ($([ "$DRY_RUN" = 1 ] && echo 'CPU only' ||
        echo 'CUDA visible')):"; pytest_summary "$log" | fence; } | body
    return "$status"
}

prepared_data() {  # the bundled test genomes as a training set, made once per check
    local prep="$WORK/prep"
    if [ ! -f "$prep/manifest.json" ]; then
        "$PY" -m dnahnet_cli prepare "$REPO"/tests/data/pool/*.fna.gz --out "$prep" \
            --fragment-length 2048 --val-fraction 0.3 --test-fraction 0.3 --seed 11 >&2 || return 1
    fi
    echo "$prep"
}

run_summary() {  # one markdown table row from a run's metrics.jsonl: $1 run dir, $2.. label cells
    "$PY" - "$@" <<'PY'
import json
import math
import sys
from pathlib import Path

run, cells = Path(sys.argv[1]), sys.argv[2:]
records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
train = [r for r in records if r["kind"] == "train"]
val = [r for r in records if r["kind"] == "val"]
finite = all(math.isfinite(r["loss"]) for r in train) and all(math.isfinite(r["bpb"]) for r in val)
compression = ", ".join(f"{train[-1][k]:.2f}" for k in sorted(train[-1])
                        if k.startswith("compression_")) or "-"
row = [*cells, str(train[-1]["step"]), f"{train[0]['loss']:.3f} → {train[-1]['loss']:.3f}",
       f"{val[-1]['bpb']:.3f}" if val else "-", f"{train[-1]['nt_per_s']:,.0f}", compression,
       "yes" if finite else "**no**"]
print("| " + " | ".join(row) + " |")
sys.exit(0 if finite and (run / "model.safetensors").exists() else 1)
PY
}

smoke_one() {  # one run: $1 a preset, or PRESET+graphs for `train --cuda-graphs`; its table row
    local run=$1 prep=$2 steps=$3 start=$SECONDS preset=${1%+graphs} extra=()
    [ "$run" = "$preset" ] || extra=(--cuda-graphs)
    if "$PY" -m dnahnet_cli train --data "$prep" --config "$preset" --out "$WORK/smoke-$run" \
        --max-steps "$steps" --batch-size 2 --device "$DEVICE" --precision bf16 \
        --log-every 1 --eval-every "$steps" --eval-fragments 4 --save-every "$steps" \
        "${extra[@]}" >"$WORK/smoke-$run.log" 2>&1; then
        run_summary "$WORK/smoke-$run" "$run" "$((SECONDS - start))" || return 1
        # a graphed run that turned its graphs off trained eagerly: not what was asked
        if [ ${#extra[@]} -gt 0 ] && { grep -q "CUDA graphs turned off" "$WORK/smoke-$run.log" ||
                ! grep -q "CUDA graphs: captured" "$WORK/smoke-$run.log"; }; then
            echo "| $run | | **graphs not used**: $(grep -m 1 "CUDA graphs" \
                "$WORK/smoke-$run.log" || echo "no capture") | | | | | |"
            return 1
        fi
    else
        echo "| $run | $((SECONDS - start)) | **failed** (see the log) | | | | | |"
        return 1
    fi
}

step_smoke() {
    local prep presets steps rc=0 jobs preset
    prep=$(prepared_data) || return 1
    if [ "$QUICK" = 1 ]; then
        presets="dnahnet-tiny"; steps=2
    else
        presets=$("$PY" -c "from dnahnet_core.model.config import list_presets; \
print(' '.join(list_presets()))"); steps=4
    fi
    # and the default model's preset through CUDA graphs (train --cuda-graphs), where CUDA is
    [ "$DRY_RUN" = 1 ] || presets="$presets dnahnet-paper-small+graphs"
    # on a GPU most of a short run is Triton compiling on the CPU: run presets side by side
    jobs=${SMOKE_JOBS:-$([ "$DRY_RUN" = 1 ] && echo 1 || echo 4)}
    {
        echo "\`dnahnet train --config PRESET --max-steps $steps --batch-size 2 --device $DEVICE" \
            "--precision bf16\` on the bundled test genomes (2,048-nt fragments), $jobs at a" \
            "time (seconds: each run's wall time, Triton compiling included; +graphs: with" \
            "\`--cuda-graphs\`):"
        echo
        echo "| preset | seconds | steps | train loss | val bpb | nt/s (last) | compression | finite |"
        echo "|---|---|---|---|---|---|---|---|"
    } | body
    for preset in $presets; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
        { smoke_one "$preset" "$prep" "$steps"; echo $? >"$WORK/smoke-$preset.rc"; } \
            >"$WORK/smoke-$preset.row" &
    done
    wait
    for preset in $presets; do  # rows and logs in the presets' order
        [ "$(cat "$WORK/smoke-$preset.rc" 2>/dev/null)" = 0 ] || rc=1
        [ -s "$WORK/smoke-$preset.row" ] ||
            echo "| $preset | | **no result** | | | | | |" >"$WORK/smoke-$preset.row"
        body <"$WORK/smoke-$preset.row"
        echo "== $preset"; cat "$WORK/smoke-$preset.log"
    done
    return $rc
}

benchmark_tables() {  # benchmarks/$1 with the other arguments; its markdown lines to the report
    local script=$1
    shift
    echo "\`python benchmarks/$script $*\`" | body
    "$PY" "benchmarks/$script" "$@" | tee "$WORK/$STEP.out"
    local status=${PIPESTATUS[0]}
    echo | body
    grep -E '^(#|\||$)' "$WORK/$STEP.out" | body
    return "$status"
}

step_inference() {
    local args=(--device "$DEVICE")
    if [ "$DRY_RUN" = 1 ]; then
        args+=(--lengths 1024 --repeats 1 --precisions fp32 --models transformer-small dnahnet-tiny)
    elif [ "$QUICK" = 1 ]; then
        args+=(--lengths 8192 --repeats 3 --models transformer-small dnahnet-small)
    else
        args+=(--lengths 8192 32768 --repeats 5 --precisions fp32 bf16
               --models transformer-small dnahnet-small dnahnet-2stage-r32 default mamba2-small)
    fi
    benchmark_tables inference_speed.py "${args[@]}"
}

step_profile() {
    local args=(--device "$DEVICE")
    if [ "$DRY_RUN" = 1 ]; then
        args+=(--lengths 1024 --repeats 1 --precision fp32 --models dnahnet-tiny)
    elif [ "$QUICK" = 1 ]; then
        args+=(--lengths 8192 --repeats 3 --models transformer-small dnahnet-small)
    fi
    benchmark_tables gpu_profile.py "${args[@]}"
}

step_graphs() {
    if [ "$DRY_RUN" = 1 ]; then
        agreement_tests tests/test_graphs.py tests/test_train_graphs.py || return 1
        skip "no CUDA in a dry run: the graph logic's CPU tests ran (above)," \
            "the replays' benchmarks need CUDA"
    fi
    # on a GPU only the CUDA tests: the rest are CPU logic, which the suite runs anyway
    agreement_tests tests/test_graphs.py tests/test_train_graphs.py -k cuda || return 1
    if grep -q "^SKIPPED" "$WORK/graphs.log"; then
        echo "**FAIL: the CUDA graph tests were skipped on a GPU machine**" | body
        return 1
    fi
    local speed=(--device "$DEVICE" --cuda-graphs) sweep=(--device "$DEVICE" --cuda-graphs)
    if [ "$QUICK" = 1 ]; then
        speed+=(--lengths 8192 --repeats 3 --models transformer-small dnahnet-small)
        sweep+=(--max-exp 15 --repeats 1 --models transformer-small dnahnet-small)
    else
        speed+=(--lengths 8192 32768 --repeats 5 --precisions bf16
                --models transformer-small dnahnet-small dnahnet-2stage-r32 default mamba2-small)
        sweep+=(--max-exp 17 --max-seconds 5 --models transformer-small dnahnet-small default)
    fi
    benchmark_tables inference_speed.py "${speed[@]}" || return 1
    benchmark_tables length_sweep.py "${sweep[@]}"
}

step_lengths() {
    local args=(--device "$DEVICE")
    if [ "$DRY_RUN" = 1 ]; then
        args+=(--precision fp32 --max-exp 11 --repeats 1 --models transformer-small dnahnet-tiny)
    elif [ "$QUICK" = 1 ]; then
        args+=(--max-exp 15 --repeats 1 --models transformer-small dnahnet-small)
    else
        args+=(--find-limit --max-seconds 5)  # past 2^19 until out of memory or a 5-s pass
    fi
    benchmark_tables length_sweep.py "${args[@]}"
}

step_train_speed() {
    local args=(--device "$DEVICE")
    if [ "$DRY_RUN" = 1 ]; then
        args+=(--length 1024 --steps 1 --precisions fp32 --models dnahnet-tiny)
    elif [ "$QUICK" = 1 ]; then
        args+=(--length 8192 --steps 3 --models dnahnet-small)
    else
        # batch 8: at batch 1 every model but the transformer spent its step launching
        # kernels (H100, 2026-11-23: 0.1-0.4 % MFU, the fast path slower than the pure one)
        args+=(--length 8192 --batch 8 --steps 10 --cuda-graphs
               --models dnahnet-small dnahnet-2stage-r32 transformer-small mamba2-small)
    fi
    echo "\`python benchmarks/train_speed.py ${args[*]}\`" | body
    "$PY" benchmarks/train_speed.py "${args[@]}" | tee "$WORK/train-speed.out"
    local status=${PIPESTATUS[0]}
    grep -v '^\[' "$WORK/train-speed.out" | fence | body
    [ "$status" = 0 ] || return 1
    # the last line is the rows as JSON; a model that failed is a row with "error"
    tail -n 1 "$WORK/train-speed.out" | "$PY" -c "import json, sys; \
sys.exit(any('error' in r for r in json.loads(sys.stdin.read())))"
}

step_torchrun() {
    local prep preset steps half backend rc=0 run="$WORK/torchrun" launch
    prep=$(prepared_data) || return 1
    launch=("$PY" -m torch.distributed.run --standalone --nproc_per_node=1)
    backend=$([ "$DEVICE" = cuda ] && echo nccl || echo gloo)
    cat >"$WORK/allreduce.py" <<PY
import os

import torch
import torch.distributed as dist

device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if "$backend" == "nccl" else "cpu"
if device != "cpu":
    torch.cuda.set_device(device)
dist.init_process_group("$backend")
value = torch.full((4,), float(dist.get_rank() + 1), device=device)
dist.all_reduce(value)
print(f"backend {dist.get_backend()}, world {dist.get_world_size()}, all_reduce -> {value.tolist()}")
dist.destroy_process_group()
PY
    if NCCL_DEBUG=WARN "${launch[@]}" "$WORK/allreduce.py" >"$WORK/allreduce.log" 2>&1; then
        echo "- $backend all-reduce under torchrun: $(grep '^backend' "$WORK/allreduce.log")" | body
    else
        echo "- **$backend all-reduce under torchrun failed** (see the log)" | body
        rc=1
    fi
    cat "$WORK/allreduce.log"
    if [ "$QUICK" = 1 ] || [ "$DRY_RUN" = 1 ]; then preset=dnahnet-tiny; else preset=dnahnet-small; fi
    if [ "$QUICK" = 1 ]; then steps=2; else steps=6; fi
    half=$((steps / 2))
    local train=(-m dnahnet_cli train --data "$prep" --max-steps "$steps" --batch-size 2
                 --device "$DEVICE" --log-every 1 --eval-every "$steps" --eval-fragments 4
                 --save-every "$half")
    # NCCL_DEBUG=INFO: whether dnahnet itself brought NCCL up shows in its log
    if NCCL_DEBUG=INFO "${launch[@]}" "${train[@]}" --out "$run" --config "$preset" \
            --stop-after "$half" >"$WORK/torchrun-1.log" 2>&1 &&
       NCCL_DEBUG=INFO "${launch[@]}" "${train[@]}" --out "$run" --resume \
            >"$WORK/torchrun-2.log" 2>&1; then
        :
    else
        rc=1
    fi
    cat "$WORK/torchrun-1.log" "$WORK/torchrun-2.log"
    {
        echo "- \`torchrun --standalone --nproc_per_node=1 -m dnahnet_cli train --config $preset" \
            "--max-steps $steps --device $DEVICE\`: stopped at step $half (--stop-after)," \
            "then --resume"
        echo "- NCCL lines in dnahnet's own logs: $(cat "$WORK"/torchrun-*.log | grep -c 'NCCL INFO')" \
            "(a world of one joins no process group: dnahnet_core/train/distributed.py)"
    } | body
    [ "$rc" = 0 ] || { echo "- **the torchrun training failed** (see the log)" | body; return 1; }
    "$PY" - "$run" "$steps" "$half" <<'PY' | body || rc=1
import json
import math
import sys
from pathlib import Path

run, steps, half = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
train = [r for r in records if r["kind"] == "train"]
got = [r["step"] for r in train]
ok = got == list(range(1, steps + 1)) and all(math.isfinite(r["loss"]) for r in train)
checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
ok = ok and f"step-{steps:06d}" in checkpoints
losses = ", ".join(f"{r['loss']:.4f}" for r in train)
print(f"- resumed run: train records at steps {got}, losses {losses}; checkpoints "
      f"{', '.join(checkpoints)}: " + ("PASS" if ok else "**FAIL**"))
sys.exit(0 if ok else 1)
PY
    if [ "$QUICK" = 0 ]; then
        # the same steps straight through, one process, no torchrun, twice: whether the
        # resumed run differs by more than two straight runs differ from each other
        if "$PY" "${train[@]}" --out "$run-straight" --config "$preset" >"$WORK/straight.log" 2>&1 &&
           "$PY" "${train[@]}" --out "$run-again" --config "$preset" >>"$WORK/straight.log" 2>&1
        then
            "$PY" - "$run" "$run-straight" "$run-again" <<'PY' | body
import json
import sys

def losses(run):
    lines = open(f"{run}/metrics.jsonl").read().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if r["kind"] == "train"]

def compared(a, b):
    diffs = [abs(x - y) for x, y in zip(a, b)]
    first = next((step for step, d in enumerate(diffs, 1) if d), None)
    return (f"max |Δ loss| = {max(diffs):.2e}, "
            + ("bit-identical" if first is None else f"first differs at step {first}"))

resumed, straight, again = map(losses, sys.argv[1:])
print(f"- two straight runs in one process each: {compared(straight, again)}")
print(f"- stop + resume under torchrun vs a straight run: {compared(resumed, straight)}")
PY
        else
            cat "$WORK/straight.log"
            echo "- **the straight runs failed** (see the log)" | body
            rc=1
        fi
    fi
    return $rc
}

if [ "${1:-}" = "--internal-step" ]; then
    STEP=$2
    cd "$REPO" || exit 1
    # Triton's kernel tuning (docs/gpu.md). The correctness steps take mamba-ssm's
    # deterministic mode: one config per kernel instead of autotuning ~11 (each compiled on
    # the CPU), and its backward reductions in a fixed order. The speed steps autotune,
    # keeping the results on disk for their later processes. A value set outside is kept.
    case $STEP in
        gpu-tests|smoke|torchrun|suite)
            export MAMBA_DETERMINISTIC=${MAMBA_DETERMINISTIC:-1}
            # mamba-ssm then warns once a process that TRITON_CACHE_AUTOTUNING=1 would cache
            # autotuning, which would autotune again; the tests read the commands' stderr
            export PYTHONWARNINGS="ignore:Deterministic mode:UserWarning${PYTHONWARNINGS:+,$PYTHONWARNINGS}"
            [ "$DRY_RUN" = 1 ] || echo "- mamba-ssm kernels: MAMBA_DETERMINISTIC=$MAMBA_DETERMINISTIC" \
                "(1: one configuration per kernel, reductions in a fixed order)" | body ;;
        inference|lengths|profile|graphs|train-speed)
            export TRITON_CACHE_AUTOTUNING=${TRITON_CACHE_AUTOTUNING:-1}
            [ "$DRY_RUN" = 1 ] || echo "- mamba-ssm kernels: autotuned," \
                "TRITON_CACHE_AUTOTUNING=$TRITON_CACHE_AUTOTUNING" | body ;;
    esac
    "step_${STEP//-/_}"
    exit $?
fi

# ---------------------------------------------------------------- the driver
DRY_RUN=0 QUICK=0 BUDGET="" STEPS="" WHEELS=.whl REPORT_DIR=""
while [ $# -gt 0 ]; do
    case $1 in
        --dry-run) DRY_RUN=1 ;;
        --quick) QUICK=1 ;;
        --steps) STEPS=${2:?--steps needs a list}; shift ;;
        --budget) BUDGET=${2:?--budget needs seconds}; shift ;;
        --wheels) WHEELS=${2:?--wheels needs a folder}; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [ -z "$REPORT_DIR" ] || die "one REPORT_DIR only (got $REPORT_DIR and $1)"
           REPORT_DIR=$1 ;;
    esac
    shift
done
[ -n "$REPORT_DIR" ] || die "give the folder for the report: scripts/gpu_check.sh [options] REPORT_DIR"
STEPS=${STEPS:-${STEPS_ALL// /,}}
for name in ${STEPS//,/ }; do
    [[ " $STEPS_ALL " == *" $name "* ]] || die "unknown step '$name' (steps: $STEPS_ALL)"
done
if [ -z "$BUDGET" ]; then BUDGET=$([ "$DRY_RUN" = 1 ] && echo 0 || echo 540); fi
[[ "$BUDGET" =~ ^[0-9]+$ ]] || die "--budget takes whole seconds, got '$BUDGET'"

REPO=$(cd "$(dirname "$0")/.." && pwd)
SCRIPT="$REPO/scripts/gpu_check.sh"
mkdir -p "$REPORT_DIR" || die "cannot create $REPORT_DIR"
REPORT_DIR=$(cd "$REPORT_DIR" && pwd)
WHEELS=$(cd "$WHEELS" 2>/dev/null && pwd || echo "$PWD/$WHEELS")
cd "$REPO" || exit 2
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ "$DRY_RUN" = 1 ] && [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
fi
command -v "$PYTHON" >/dev/null || die "no Python '$PYTHON' (set PYTHON)"
PY=$PYTHON
DEVICE=$([ "$DRY_RUN" = 1 ] && echo cpu || echo cuda)

REPORT="$REPORT_DIR/$REPORT_NAME"
if [ -e "$REPORT" ] && [ "$(head -n 1 "$REPORT")" != "$HEADER" ]; then
    die "$REPORT exists and is not a report of this script: give another REPORT_DIR"
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dnahnet-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# a dry run installs the GPU's wheels only to check them: into the scratch folder
SITE=${SITE:-$([ "$DRY_RUN" = 1 ] && echo "$WORK/site" || echo /tmp/dnahnet-gpu-site)}
export REPO PY SITE SITE_MARK WHEELS WORK DRY_RUN QUICK DEVICE PYTHONUNBUFFERED=1
BASE_PYTHONPATH=${PYTHONPATH:+:$PYTHONPATH}
# the repository, the installed wheels and the caller's path: what imports mamba_ssm
export SITE_PYTHONPATH="$REPO:$SITE$BASE_PYTHONPATH"
use_site() {  # on a GPU, once the wheels are installed, every step imports them
    PYTHONPATH="$REPO$BASE_PYTHONPATH"
    if [ "$DRY_RUN" = 0 ] && [ -f "$SITE/$SITE_MARK" ]; then
        PYTHONPATH="$SITE_PYTHONPATH"
    fi
    export PYTHONPATH
}

START=$SECONDS
ROWS=()      # summary table rows
SECTIONS=()  # files with each step's report section
FAILED=0

render() {  # the report so far, replaced atomically
    local note=$1
    {
        echo "$HEADER"
        echo
        echo "\`scripts/gpu_check.sh$([ "$DRY_RUN" = 1 ] && echo ' --dry-run')$(
            [ "$QUICK" = 1 ] && echo ' --quick') --steps $STEPS\` — $note"
        echo
        echo "| step | status | seconds | note |"
        echo "|---|---|---|---|"
        printf '%s\n' "${ROWS[@]}"
        for section in "${SECTIONS[@]}"; do echo; cat "$section"; done
    } >"$REPORT.tmp" && mv "$REPORT.tmp" "$REPORT"
}

# minimal seconds each step needs on a GPU (a step is skipped when less is left)
declare -A NEEDS=([env]=5 [install]=10 [fast-path]=15 [gpu-tests]=30 [smoke]=45 [torchrun]=45
                  [inference]=45 [lengths]=60 [profile]=30 [graphs]=60 [train-speed]=60 [suite]=90)
declare -A TITLES=([env]="Environment" [install]="Install the carried wheels"
    [fast-path]="mamba-ssm fast path" [gpu-tests]="GPU tests" [smoke]="bf16 training, every preset"
    [torchrun]="torchrun (NCCL) and resume" [inference]="Inference speed"
    [lengths]="Long sequences: speed, memory, the longest that fits"
    [profile]="Where a forward's time goes" [graphs]="Forwards replayed from CUDA graphs"
    [train-speed]="Training speed" [suite]="The whole fast test suite")

number=0
for name in $STEPS_ALL; do
    [[ ",$STEPS," == *",$name,"* ]] || continue
    number=$((number + 1))
    render "running $name"
    section="$WORK/$number-$name.section"
    log="$WORK/$name.log"
    rm -f "$WORK/$name.md" "$WORK/$name.skip"
    left=0
    [ "$BUDGET" -gt 0 ] && left=$((BUDGET - (SECONDS - START) - 10))
    started=$SECONDS
    if [ "$BUDGET" -gt 0 ] && [ "$left" -lt "${NEEDS[$name]}" ]; then
        status=SKIP note="time budget: ${left}s left of --budget $BUDGET"
        echo "$note" >"$WORK/$name.skip"
    else
        limit=()
        [ "$BUDGET" -gt 0 ] && limit=(timeout --kill-after=10 "$left")
        echo "gpu_check: $name ..." >&2
        use_site
        "${limit[@]}" bash "$SCRIPT" --internal-step "$name" >"$log" 2>&1
        rc=$?
        case $rc in
            0) status=PASS note="" ;;
            77) status=SKIP note=$(cat "$WORK/$name.skip") ;;
            124|137) status=FAIL note="stopped after ${left}s (time budget)" ;;
            *) status=FAIL note="exit status $rc" ;;
        esac
    fi
    seconds=$((SECONDS - started))
    [ "$status" = FAIL ] && FAILED=$((FAILED + 1))
    echo "gpu_check: $name $status (${seconds}s) $note" >&2
    ROWS+=("| $name | $status | $seconds | ${note//|//} |")
    {
        echo "## $number. ${TITLES[$name]} — $status"
        echo
        [ "$status" = SKIP ] && echo "SKIP: $note" && echo
        [ -f "$WORK/$name.md" ] && cat "$WORK/$name.md" && echo
        # the log's tail, unless the section above already shows every line of it
        if [ -s "$log" ] && { [ "$status" != PASS ] || [ ! -f "$WORK/$name.md" ] ||
                grep -qvxFf "$WORK/$name.md" "$log"; }; then
            echo "<details><summary>log: last 60 of $(wc -l <"$log") lines</summary>"
            echo
            tail -n 60 "$log" | fence
            echo
            echo "</details>"
        fi
    } >"$section"
    SECTIONS+=("$section")
done

render "finished in $((SECONDS - START)) s: $FAILED step(s) failed"
echo "gpu_check: report $REPORT ($FAILED failed)"
printf '%s\n' "${ROWS[@]}"
[ "$FAILED" = 0 ]
