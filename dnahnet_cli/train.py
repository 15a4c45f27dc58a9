"""`dnahnet train`: train dnaHNet (or a baseline) on a prepared dataset; resumable, DDP-ready.

Multi-GPU: `torchrun --nproc_per_node=G -m dnahnet_cli train ...` (see docs/training.md).
"""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import above, at_least, between, number_range, output_dir

NEW_RUN_ADVICE = "choose a new directory, or pass --resume to continue the run in it"
# a run stopped by a signal, checkpoint saved: what to say, the exit status
STOPPED = {"interrupted": ("interrupted", 130), "terminated": ("terminated (SIGTERM)", 143)}


def _opt(flags: str, help: str, default=None, callback=None):
    """An option whose default None means "the run's saved value on --resume, else the default"."""
    return typer.Option(default, flags, help=help, callback=callback)


def command(
    data: Path = _opt("--data", "Prepared dataset (`dnahnet prepare`)."),
    config: str = common.config_option(
        "Model preset name or config.json (taken from the run on --resume)."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run directory (checkpoints, metrics); new or empty unless "
        "--resume.", callback=output_dir,
    ),
    max_steps: int = _opt("--max-steps", "Optimizer steps (default: 1000).", callback=at_least(1)),
    tokens: float = _opt(
        "--tokens", "Train on this many nucleotides instead of --max-steps.", callback=above(0)
    ),
    batch_size: int = common.batch_size_option(
        None, "Fragments per micro-batch and process (default: 8)."
    ),
    grad_accum: int = _opt(
        "--grad-accum", "Micro-batches per step (default: 1).", callback=at_least(1)
    ),
    lr: float = _opt(
        "--lr", "Peak learning rate (innermost stage) (default: 1e-3).",
        callback=number_range(above=0, maximum=1, why="an AdamW step moves each weight by ~lr"),
    ),
    warmup: int = _opt(
        "--warmup", "Warm-up steps (default: 10% of the run, <= 2000).", callback=at_least(0)
    ),
    min_lr_ratio: float = _opt(
        "--min-lr-ratio", "Final lr / peak lr (default: 0.1).", callback=between(0, 1)
    ),
    weight_decay: float = _opt(
        "--weight-decay", "AdamW weight decay (default: 0.05).", callback=at_least(0)
    ),
    grad_clip: float = _opt(
        "--grad-clip", "Gradient norm clip, 0 = off (default: 1.0).", callback=at_least(0)
    ),
    ratio_loss_weight: float = _opt(
        "--ratio-loss-weight",
        "alpha: weight of the ratio losses (default: 0.02, the paper's range 0.01-0.02).",
        callback=at_least(0),
    ),
    seed: int = common.seed_option(None, "Seed of weights and data order (default: 0)."),
    device: str = common.device_option(),
    precision: str = common.precision_option(None),
    compile: bool = _opt(
        "--compile/--no-compile", "Compile the model with torch.compile (default: off)."
    ),
    cuda_graphs: bool = _opt(
        "--cuda-graphs/--no-cuda-graphs",
        "Replay each step's forward and backward from CUDA graphs: one GPU, no host "
        "overhead (default: off).",
    ),
    rc_augment: bool = _opt(
        "--rc-augment/--no-rc-augment",
        "Random reverse-complement augmentation (default: on).",
    ),
    log_every: int = _opt(
        "--log-every", "Steps between metrics records (default: 10).", callback=at_least(1)
    ),
    eval_every: int = _opt(
        "--eval-every", "Steps between validations (default: 200).", callback=at_least(1)
    ),
    eval_fragments: int = _opt(
        "--eval-fragments",
        "Validation fragments per evaluation (default: 256).",
        callback=at_least(1),
    ),
    save_every: int = _opt(
        "--save-every", "Steps between checkpoints (default: 500).", callback=at_least(1)
    ),
    keep: int = _opt("--keep", "Checkpoints kept (default: 3).", callback=at_least(1)),
    stop_after: int = _opt(
        "--stop-after",
        "Save and stop after this many steps in this session (the schedule "
        "still follows --max-steps).",
        callback=at_least(1),
    ),
    time_limit: float = _opt(
        "--time-limit",
        "Save and stop when another step would pass this many minutes of training in this "
        "session (a job's wall time; the schedule still follows --max-steps/--tokens).",
        callback=above(0),
    ),
    tensorboard: bool = _opt("--tensorboard", "Also log to RUNDIR/tensorboard."),
    resume: bool = _opt("--resume", "Continue the run in --out from its last checkpoint.", False),
) -> None:
    """Train a model: RUNDIR gets config.json, model.safetensors, metrics.jsonl, checkpoints/."""
    from dnahnet_core.io.atomic import output_directory
    from dnahnet_core.progress import log
    from dnahnet_core.train import resolve_options, train

    values = {
        "data": str(data) if data is not None else None, "config": config, "out": str(out),
        "max_steps": max_steps, "tokens": None if tokens is None else int(tokens),
        "batch_size": batch_size,
        "grad_accum": grad_accum, "lr": lr, "warmup": warmup, "min_lr_ratio": min_lr_ratio,
        "weight_decay": weight_decay, "grad_clip": grad_clip,
        "ratio_loss_weight": ratio_loss_weight, "seed": seed, "device": device,
        "precision": precision, "compile": compile, "cuda_graphs": cuda_graphs,
        "rc_augment": rc_augment,
        "log_every": log_every, "eval_every": eval_every, "eval_fragments": eval_fragments,
        "save_every": save_every, "keep": keep, "stop_after": stop_after,
        "time_limit": time_limit, "tensorboard": tensorboard,
    }
    options = resolve_options(values, resume=resume)
    if resume or not _is_main():  # only rank 0 writes the run directory
        result = train(options, resume=resume)
    else:  # a new run: --out must be new or empty, and goes again if nothing was written
        with output_directory(out, advice=NEW_RUN_ADVICE):
            result = train(options, resume=False)
    stopped = STOPPED.get(result.status)
    if not _is_main():
        if stopped is not None:
            raise typer.Exit(stopped[1])
        return
    where = result.checkpoint
    if stopped is not None:
        what, code = stopped
        log(f"{what} at step {result.step}; checkpoint saved to {where} "
            f"(continue with --resume)")
        raise typer.Exit(code)
    val = f", validation bpb {result.val['bpb']:.4f}" if result.val else ""
    if where is None:  # resumed at or past its length: no step to run
        log(f"nothing to do: the run in {options.out} is already at step {result.step}, "
            "its full length (give a larger --max-steps or --tokens to train on)")
        return
    paused = result.status == "paused"
    verb, hint = ("paused", "; continue with --resume") if paused else ("finished", "")
    log(f"{verb} at step {result.step}{val}; model in {options.out} (checkpoint "
        f"{where.name}{hint})")


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
