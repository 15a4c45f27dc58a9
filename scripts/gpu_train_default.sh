#!/usr/bin/env bash
# Train the default model on a GPU inside one device call and send it back (docs/gpu.md).
#
#   bash scripts/gpu_train_default.sh [options] OUT
#
#   1. install the carried wheels, once per machine (scripts/gpu_check.sh --steps env,install)
#   2. prepare the training data, once per machine: the shipped model's inputs (--inputs:
#      ../shared/data/pool/* and annotated/*.fna.gz, copied into .gpu_data) with its card's
#      options (8,192-nt fragments, val and test fractions 0.01, seed 0)
#   3. train dnahnet-paper-small with the card's recipe in bf16 for --minutes
#      (`train --time-limit`); a --run that holds a checkpoint is continued (--resume).
#      The schedule's length (--tokens) is, unless given, what this call can train: the
#      nucleotides already seen plus the pace times the minutes (the pace of a 20-step
#      probe for a new run, the run's own recent pace on --resume): each call one cosine
#   4. pack what the CPU needs to evaluate and ship the model: config.json, float16 weights,
#      metadata.json, metrics.jsonl, run.json, the data manifest and every call's log, as
#      OUT/gpu-default.tar.gz.part-NN of at most 15 MiB (a call returns 8 files of <= 16 MiB)
#   Back here:  cat DIR/gpu-default.tar.gz.part-* | tar -xz -C runs/    (-> runs/gpu-default/)
#
# Options:
#   --dry-run       on a CPU: dnahnet-tiny on the bundled test genomes, nothing installed
#                   (how this script is tested: tests/test_gpu_check.py)
#   --minutes M     minutes of training in this call (default 6: with install, data and
#                   probe it fits one 10-minute device call)
#   --schedule-minutes S
#                   size the schedule for S minutes at the pace (default --minutes): more
#                   than --minutes leaves the rest of one cosine to the next call, which
#                   continues the run with --minutes the rest
#   --tokens T      the schedule's length in nucleotides (default: see 3.)
#   --batch-size B  fragments per step of a new run (default 8; halved while the probe
#                   runs out of GPU memory). The first GPU run, at 32, took 400 steps in 4
#                   minutes and its boundaries learned no codon periodicity (docs/training.md)
#   --lr LR         peak learning rate (default 2e-3, the card's)
#   --cuda-graphs   train with `train --cuda-graphs` (the probe too): each step's forward
#                   and backward replayed from CUDA graphs; a capture that fails or
#                   disagrees with the eager step turns them off and training goes on
#   --run DIR       the run folder (default runs/gpu-default; it stays while the machine does)
#   --inputs DIR    the genomes (default .gpu_data)
# Environment: PYTHON (python3; .venv/bin/python with --dry-run), PREP (the prepared data,
# default /tmp/dnahnet-gpu-prep), SITE (as gpu_check.sh), TRAIN_ARGS (more train options).
# Exit status 0 when the parts were written (a run paused by --minutes is a success).
set -uo pipefail

PARTS=gpu-default.tar.gz.part-
die() { echo "gpu_train_default: error: $*" >&2; exit 2; }
say() { echo "gpu_train_default: $*" >&2; }

DRY_RUN=0 MINUTES=6 SCHEDULE="" TOKENS="" BATCH=8 LR=2e-3 RUN=runs/gpu-default INPUTS=.gpu_data OUT=""
GRAPHS=(--no-cuda-graphs)  # explicit: a resumed run would keep its last value
while [ $# -gt 0 ]; do
    case $1 in
        --dry-run) DRY_RUN=1 ;;
        --minutes) MINUTES=${2:?--minutes needs a number}; shift ;;
        --schedule-minutes) SCHEDULE=${2:?--schedule-minutes needs a number}; shift ;;
        --tokens) TOKENS=${2:?--tokens needs a number}; shift ;;
        --batch-size) BATCH=${2:?--batch-size needs a number}; shift ;;
        --lr) LR=${2:?--lr needs a number}; shift ;;
        --cuda-graphs) GRAPHS=(--cuda-graphs) ;;
        --run) RUN=${2:?--run needs a folder}; shift ;;
        --inputs) INPUTS=${2:?--inputs needs a folder}; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [ -z "$OUT" ] || die "one OUT only (got $OUT and $1)"; OUT=$1 ;;
    esac
    shift
done
[ -n "$OUT" ] || die "give the folder for the parts: scripts/gpu_train_default.sh [options] OUT"
[[ "$MINUTES" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--minutes takes a number, got '$MINUTES'"
SCHEDULE=${SCHEDULE:-$MINUTES}
[[ "$SCHEDULE" =~ ^[0-9]+([.][0-9]+)?$ ]] ||
    die "--schedule-minutes takes a number, got '$SCHEDULE'"
[[ "$BATCH" =~ ^[1-9][0-9]*$ ]] || die "--batch-size takes a whole number, got '$BATCH'"

REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
cd "$REPO" || exit 2
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ "$DRY_RUN" = 1 ] && [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
fi
command -v "$PYTHON" >/dev/null || die "no Python '$PYTHON' (set PYTHON)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dnahnet-gpu-train.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
LOG="$WORK/gpu-train.log"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1
# the probe's Triton autotuning, kept on disk, spares the training run minutes of it
export TRITON_CACHE_AUTOTUNING=${TRITON_CACHE_AUTOTUNING:-1}
dnahnet() { "$PYTHON" -m dnahnet_cli "$@"; }

if [ "$DRY_RUN" = 1 ]; then
    DEVICE=cpu CONFIG=dnahnet-tiny PROBE_STEPS=3
    PREP=${PREP:-$WORK/prep}
    [ "$INPUTS" = .gpu_data ] && INPUTS=tests/data/pool
    PREP_ARGS=(--fragment-length 1024 --val-fraction 0.34 --test-fraction 0 --seed 0)
    RUN_ARGS=(--eval-every 4 --eval-fragments 4 --save-every 4 --log-every 1 --warmup 2)
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
else
    DEVICE=cuda CONFIG=dnahnet-paper-small PROBE_STEPS=20
    PREP=${PREP:-/tmp/dnahnet-gpu-prep}
    PREP_ARGS=(--val-fraction 0.01 --test-fraction 0.01 --seed 0 --workers "$(nproc)")
    RUN_ARGS=(--eval-every 100 --eval-fragments 64 --save-every 100 --log-every 10 --warmup 100)
    SITE=${SITE:-/tmp/dnahnet-gpu-site}
    if [ ! -f "$SITE/.dnahnet-gpu-site" ]; then  # gpu_check.sh's mark of a finished install
        say "installing the carried wheels (scripts/gpu_check.sh --steps env,install)"
        SITE=$SITE bash scripts/gpu_check.sh --steps env,install "$WORK/check" ||
            die "the install failed: $(grep -m 1 -F '**' "$WORK/check/gpu-check.md")"
    fi
    export PYTHONPATH="$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
# shellcheck disable=SC2206  # TRAIN_ARGS is split into words on purpose
RUN_ARGS+=(--device "$DEVICE" --precision bf16 "${GRAPHS[@]}" ${TRAIN_ARGS:-})

# ---------------------------------------------------------------- 2. data
if [ ! -f "$PREP/manifest.json" ]; then
    shopt -s nullglob  # the card's order: the pool folder, then the annotated genomes
    genomes=("$INPUTS"/*.fna.gz "$INPUTS"/*.fna.xz)
    shopt -u nullglob
    [ -d "$INPUTS/pool" ] && genomes=("$INPUTS/pool" "${genomes[@]}")
    [ ${#genomes[@]} -gt 0 ] || die "no genomes (*.fna.gz, *.fna.xz) in $INPUTS or $INPUTS/pool"
    say "preparing ${genomes[*]} into $PREP"
    dnahnet prepare "${genomes[@]}" --out "$PREP" "${PREP_ARGS[@]}" || die "prepare failed"
fi

# ---------------------------------------------------------------- 3. train
pace_of() {  # median nt/s of a run's last 10 training records
    "$PYTHON" - "$1" <<'PY'
import json
import statistics
import sys
from pathlib import Path

rows = [json.loads(line) for line in (Path(sys.argv[1]) / "metrics.jsonl").open()]
paces = [r["nt_per_s"] for r in rows if r.get("kind") == "train"][-10:]
print(f"{statistics.median(paces):.0f}" if paces else "")
PY
}
seen_of() {  # nucleotides a run has trained on (its weights' metadata)
    "$PYTHON" -c "import json, sys; print(json.load(open(sys.argv[1]))['tokens'])" \
        "$1/metadata.json"
}
if [ -d "$RUN/checkpoints" ]; then
    start=(--resume) seen=$(seen_of "$RUN") pace=$(pace_of "$RUN")
    say "continuing $RUN from $seen nt (its pace: $pace nt/s)"
else
    seen=0
    while :; do  # halve the batch while it does not fit in the GPU's memory
        say "probing the pace: $PROBE_STEPS steps of $CONFIG, batch $BATCH"
        rm -rf "$WORK/probe"
        dnahnet train --data "$PREP" --config "$CONFIG" --out "$WORK/probe" \
            --max-steps "$PROBE_STEPS" "${RUN_ARGS[@]}" --batch-size "$BATCH" --log-every 1 \
            --eval-every 100000 >"$WORK/probe.log" 2>&1 && break
        tail -n 30 "$WORK/probe.log"
        if grep -qi "out of memory" "$WORK/probe.log" && [ "$BATCH" -gt 1 ]; then
            BATCH=$((BATCH / 2))
            continue
        fi
        die "the probe run failed"
    done
    start=(--config "$CONFIG" --lr "$LR" --batch-size "$BATCH")
    pace=$(pace_of "$WORK/probe")
    say "pace: $pace nt/s"
fi
if [ -z "$TOKENS" ]; then
    [ -n "$pace" ] || die "no pace to plan the schedule from: give --tokens"
    TOKENS=$("$PYTHON" -c "import sys; s, p, m = map(float, sys.argv[1:]); \
print(int(s + p * m * 60))" "$seen" "$pace" "$SCHEDULE")
fi
say "training $RUN for $MINUTES min, schedule to $TOKENS nt"
started=$SECONDS
dnahnet train --data "$PREP" --out "$RUN" "${start[@]}" --tokens "$TOKENS" \
    --time-limit "$MINUTES" "${RUN_ARGS[@]}"
status=$?
say "train exit status $status after $((SECONDS - started)) s"
[ -f "$RUN/metadata.json" ] || die "$RUN has no saved model to send back"

# ---------------------------------------------------------------- 4. pack
name=$(basename "$RUN")
pack="$WORK/pack/$name"
mkdir -p "$pack"
"$PYTHON" - "$RUN" "$pack" <<'PY' || die "packing failed"
import json
import sys
from pathlib import Path

import torch

from dnahnet_core.model import load_model, save_model

run, pack = map(Path, sys.argv[1:])
metadata = json.loads((run / "metadata.json").read_text())
save_model(load_model(run), pack, metadata=metadata, dtype=torch.float16)
PY
mkdir -p "$RUN/logs"
cp "$LOG" "$RUN/logs/gpu-train-$(date -u +%Y%m%dT%H%M%SZ).log"  # one per call, all sent back
cp -r "$RUN/metrics.jsonl" "$RUN/run.json" "$RUN/logs" "$pack/"
cp "$PREP/manifest.json" "$pack/training_data_manifest.json"
rm -f "$OUT/$PARTS"*
tar -czf - -C "$WORK/pack" "$name" | split -b 15M -d -a 2 - "$OUT/$PARTS" || die "tar failed"
parts=$(ls "$OUT/$PARTS"* | wc -l)
[ "$parts" -le 7 ] || die "$parts parts: more than a device call returns"
say "sent back: $(cd "$OUT" && ls -s --block-size=K "$PARTS"* | tr '\n' ' ')(train status $status)"
case $status in 0|130) exit 0 ;; *) exit "$status" ;; esac
