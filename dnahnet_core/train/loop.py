"""The training loop behind ``dnahnet train``.

One optimizer step: this rank's ``grad_accum`` micro-batches (see ``data.py``),
loss = NLL / (valid nucleotides of the global batch) + alpha * mean ratio loss,
backward (DDP all-reduces the gradients on the last micro-batch), one small
all-reduce of the step's statistics, a finiteness check, clipping, AdamW, and the
warm-up + cosine schedule. Rank 0 alone writes metrics and checkpoints.

Stopping: a first Ctrl-C (SIGINT) or a SIGTERM (SLURM pre-emption, torchrun
shutting down) finishes the current step on every rank, saves a checkpoint and
returns ``status="interrupted"``; a second Ctrl-C aborts at once. A non-finite
loss or gradient norm stops before the optimizer step with a ``DnahnetError``
naming the step; the checkpoints already written stay untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import atomic_open
from dnahnet_core.progress import interactive, log, progress
from dnahnet_core.train import checkpoint as ckpt
from dnahnet_core.train import distributed
from dnahnet_core.train.compile import compiled_for_training
from dnahnet_core.train.data import ShardedBatches
from dnahnet_core.train.evaluate import evaluate_split
from dnahnet_core.train.metrics import (
    Interval,
    MetricsLog,
    stage_stats,
    token_nll,
    truncate_metrics,
)
from dnahnet_core.train.optim import WarmupCosine, build_optimizer, default_warmup
from dnahnet_core.train.precision import autocast, resolve_precision

DEFAULT_MAX_STEPS = 1000


@dataclass
class TrainOptions:
    """Everything that defines a run; saved as ``RUNDIR/run.json``."""

    data: str = ""
    config: str | None = None
    out: str = ""
    max_steps: int | None = None
    tokens: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int | None = None
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    ratio_loss_weight: float = 0.03
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False  # torch.compile the model (compile.py)
    rc_augment: bool = True  # random reverse-complement augmentation
    log_every: int = 10
    eval_every: int = 200
    eval_fragments: int = 256
    save_every: int = 500
    keep: int = 3
    tensorboard: bool = False
    stop_after: int | None = None  # steps in this session; the schedule still follows max_steps

    # options that may differ between the sessions of one run without changing its meaning
    SESSION = ("out", "data", "device", "resume", "stop_after", "tensorboard", "log_every",
               "eval_every", "eval_fragments", "save_every", "keep", "max_steps", "tokens",
               "compile")
    # names that runs saved before a rename still use
    RENAMED = {"reverse_complement": "rc_augment"}

    @classmethod
    def from_values(cls, values: dict) -> TrainOptions:
        values = {cls.RENAMED.get(k, k): v for k, v in values.items()}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise DnahnetError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    step: int
    status: str  # "finished", "interrupted" (signal) or "paused" (--stop-after)
    run_dir: Path
    checkpoint: Path | None = None
    last: dict | None = None
    val: dict | None = None
    history: list[dict] = field(default_factory=list)


class NonFinite(DnahnetError):
    """Raised when the loss or the gradient norm is NaN or infinite."""


class _StopRequest:
    """First SIGINT/SIGTERM: finish the step and save. Second SIGINT: abort."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not self.requested:
            log("stop requested: finishing this step and saving a checkpoint "
                "(Ctrl-C again to abort without saving)")
        self.requested = True

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def resolve_options(values: dict, resume: bool) -> TrainOptions:
    """Options for this session: on resume, the run's saved options overridden by ``values``."""
    values = {k: v for k, v in values.items() if v is not None}
    if not values.get("out"):
        raise DnahnetError("--out: a run directory is required")
    run_dir = Path(values["out"])
    if resume:
        saved_path = run_dir / "run.json"
        if ckpt.latest_checkpoint(run_dir) is None or not saved_path.is_file():
            raise DnahnetError(f"--resume: no checkpoint in {run_dir}")
        saved = json.loads(saved_path.read_text())
        saved.pop("stop_after", None)  # a limit of the previous session only
        if "max_steps" in values or "tokens" in values:  # a new length replaces the old one
            saved["max_steps"] = saved["tokens"] = None
        changed = [
            k for k, v in values.items()
            if k in saved and saved[k] != v and k not in TrainOptions.SESSION
        ]
        if changed:
            log(f"resume: overriding the run's {', '.join(changed)}")
        saved.update(values)
        return TrainOptions.from_values(saved)
    if ckpt.latest_checkpoint(run_dir) is not None:
        raise DnahnetError(
            f"--out {run_dir}: already holds a training run; pass --resume to continue it "
            "or choose another directory"
        )
    if not values.get("data"):
        raise DnahnetError("--data: a prepared dataset directory is required")
    if not values.get("config"):
        raise DnahnetError("--config: a preset name or a config.json is required")
    return TrainOptions.from_values(values)


def _open_datasets(options: TrainOptions):
    from dnahnet_core.data.dataset import FragmentDataset

    if not Path(options.data).is_dir():
        raise DnahnetError(f"--data {options.data}: no such directory")
    train_set = FragmentDataset(options.data, split="train")
    try:
        val_set = FragmentDataset(options.data, split="val")
    except DnahnetError:
        val_set = None
    return train_set, val_set


def _build_model(options: TrainOptions, checkpoint: Path | None):
    from dnahnet_core.model import build_model, load_config, save_model

    config = load_config(str(checkpoint / "config.json") if checkpoint else options.config)
    model = build_model(config, seed=options.seed)

    def save_weights(module: nn.Module, directory: Path, metadata: dict) -> None:
        save_model(module, directory, metadata=metadata)

    return model, save_weights


def total_steps(options: TrainOptions, global_batch: int, fragment_length: int) -> int:
    if options.max_steps is not None and options.tokens is not None:
        raise DnahnetError("give --max-steps or --tokens, not both")
    if options.tokens is not None:
        return max(1, math.ceil(options.tokens / (global_batch * fragment_length)))
    return options.max_steps if options.max_steps is not None else DEFAULT_MAX_STEPS


def _check_options(options: TrainOptions) -> None:
    for name in ("batch_size", "grad_accum", "log_every", "eval_every", "save_every", "keep"):
        if getattr(options, name) < 1:
            raise DnahnetError(f"--{name.replace('_', '-')}: must be at least 1")
    if options.lr <= 0:
        raise DnahnetError("--lr: must be positive")
    if options.max_steps is not None and options.max_steps < 1:
        raise DnahnetError("--max-steps: must be at least 1")


def train(
    options: TrainOptions,
    *,
    resume: bool = False,
    model: nn.Module | None = None,
    train_set=None,
    val_set=None,
    save_weights: ckpt.SaveWeights | None = None,
    on_step: Callable[[int, dict], None] | None = None,
    show_progress: bool | None = None,
) -> TrainResult:
    """Train (or resume) the run in ``options.out``. ``model``/``train_set``/``val_set`` are
    built from ``options`` unless given (tests and notebooks pass their own)."""
    _check_options(options)
    run_dir = Path(options.out)
    world = distributed.setup(options.device)
    try:
        return _train(options, resume, world, run_dir, model, train_set, val_set,
                      save_weights, on_step, show_progress)
    finally:
        distributed.teardown()


def _train(options, resume, world, run_dir, model, train_set, val_set, save_weights,
           on_step, show_progress) -> TrainResult:
    device = world.device
    precision = resolve_precision(options.precision, device)
    checkpoint = ckpt.latest_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None:
        raise DnahnetError(f"--resume: no checkpoint in {run_dir}")
    if train_set is None:
        train_set, val_set = _open_datasets(options)
    if len(train_set) == 0:
        raise DnahnetError(f"--data {options.data}: the train split is empty")
    if model is None:
        model, save_weights = _build_model(options, checkpoint)
    save_weights = save_weights or ckpt.plain_save_weights
    model.to(device)
    model.train()

    stream = ShardedBatches(
        train_set, seed=options.seed, micro_batch=options.batch_size,
        grad_accum=options.grad_accum, rank=world.rank, world_size=world.world_size,
        rc_augment=options.rc_augment,
    )
    fragment_length = int(getattr(train_set, "fragment_length", 0) or len(train_set[0]))
    steps = total_steps(options, stream.global_batch, fragment_length)
    warmup = options.warmup if options.warmup is not None else default_warmup(steps)
    schedule = WarmupCosine(options.lr, warmup, steps, options.min_lr_ratio)
    optimizer = build_optimizer(model, options.lr, options.weight_decay)

    step, samples_seen, tokens_seen, val = 0, 0, 0, None
    torch.manual_seed(options.seed + 1000 * world.rank)
    if checkpoint is not None:
        state = ckpt.load_checkpoint(checkpoint, model, optimizer, rank=world.rank,
                                     world_size=world.world_size)
        step, samples_seen, tokens_seen = state["step"], state["samples_seen"], state["tokens"]
        val = state.get("val")
        if world.is_main:
            log(f"resuming {run_dir} from step {step} ({checkpoint.name})")

    metrics = None
    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if checkpoint is not None:
            truncate_metrics(run_dir / "metrics.jsonl", step)
        with atomic_open(run_dir / "run.json", "w") as handle:
            json.dump(options.to_dict(), handle, indent=2)
        metrics = MetricsLog(run_dir, options.tensorboard)

    net = model
    if world.distributed:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if options.compile:
        net = compiled_for_training(net)

    alpha = options.ratio_loss_weight
    micro = options.grad_accum
    result = TrainResult(step=step, status="finished", run_dir=run_dir)
    last_saved = step if checkpoint is not None else None
    last_eval = step if checkpoint is not None else None

    def save() -> Path:
        nonlocal last_saved
        rng = world.gather_objects(ckpt.capture_rng())
        path = run_dir / ckpt.CHECKPOINTS / ckpt.checkpoint_name(step)
        if world.is_main:
            meta = {"step": step, "tokens": tokens_seen, "val": val,
                    "config_source": options.config, "data": options.data}
            state = {"samples_seen": samples_seen, "tokens": tokens_seen,
                     "epoch": samples_seen // len(train_set), "total_steps": steps,
                     "warmup": warmup, "val": val, "options": options.to_dict()}
            path = ckpt.save_checkpoint(
                run_dir, step=step, model=model, optimizer=optimizer, state=state,
                rng_per_rank=rng, metadata=meta, keep=options.keep, save_weights=save_weights,
            )
        last_saved = step
        result.checkpoint = path
        return path

    def validate() -> None:
        nonlocal val, last_eval
        last_eval = step
        if val_set is None or len(val_set) == 0:
            return
        val = evaluate_split(model, val_set, batch_size=options.batch_size, device=device,
                             precision=precision, max_fragments=options.eval_fragments,
                             world=world)
        record = {"kind": "val", "step": step, "tokens": tokens_seen, **val}
        result.val = val
        if metrics is not None:
            metrics.write(record)
            result.history.append(record)
            log(f"step {step}: validation bpb {val['bpb']:.4f}")

    session_steps = 0
    interval = Interval()
    interval.reset(time.perf_counter())
    show = world.is_main and (interactive() if show_progress is None else show_progress)
    with _StopRequest() as stop, progress("steps", enabled=show) as bar:
        task = bar.add_task("training", total=steps, completed=step, rate="")
        while step < steps:
            lr = schedule.apply(optimizer, step)
            batches = stream.step(samples_seen)
            count = torch.tensor(float(sum(int(m.sum()) for _, m in batches)), device=device)
            global_count = world.all_reduce_sum(count.clone())
            nll_sum = torch.zeros((), device=device)
            ratio_sum = torch.zeros((), device=device)
            stages = None
            for k, (tokens, mask) in enumerate(batches):
                tokens, mask = tokens.to(device), mask.to(device)
                sync = world.distributed and k < micro - 1
                with net.no_sync() if sync else contextlib.nullcontext():
                    with autocast(device, precision):
                        out = net(tokens, mask)
                    nll = token_nll(out.logits, tokens, mask)
                    ratio = out.ratio_loss if out.ratio_loss is not None else 0.0
                    ratio = torch.as_tensor(ratio, device=device).float()
                    loss = nll * world.world_size / global_count + alpha * ratio / micro
                    loss.backward()
                nll_sum += nll.detach()
                ratio_sum += ratio.detach()
                st = stage_stats(out, device)
                stages = st if stages is None else stages + st
            flag = torch.tensor([1.0 if stop.requested else 0.0], device=device)
            packed = torch.cat([nll_sum.view(1), ratio_sum.view(1), flag, stages.reshape(-1)])
            world.all_reduce_sum(packed)
            parts = micro * world.world_size
            nll_total, ratio_mean = packed[0].item(), packed[1].item() / parts
            if not (math.isfinite(nll_total) and math.isfinite(ratio_mean)):
                raise NonFinite(_nonfinite_message("loss", step + 1, last_saved, run_dir))
            grad_norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), options.grad_clip if options.grad_clip > 0 else math.inf
            ).item()
            if not math.isfinite(grad_norm):
                raise NonFinite(_nonfinite_message("gradient norm", step + 1, last_saved, run_dir))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

            step += 1
            session_steps += 1
            samples_seen += stream.global_batch
            tokens_seen += int(global_count.item())
            interval.add(
                loss=nll_total / global_count.item() + alpha * ratio_mean, nll_sum=nll_total,
                count=global_count.item(), ratio=ratio_mean, grad_norm=grad_norm,
                stages=packed[3:].view(-1, 3) / parts,
            )
            bar.update(task, completed=step)
            busy = False
            if step % options.log_every == 0 or step == steps:
                record = interval.record(step=step, tokens=tokens_seen, lr=lr,
                                         now=time.perf_counter())
                result.last = record
                if metrics is not None:
                    metrics.write(record)
                    result.history.append(record)
                    bar.update(task, description=_describe(record),
                               rate=f"{record['nt_per_s']:,.0f} nt/s")
                    if not show:
                        log(_describe(record) + f" lr {lr:.2e} {record['nt_per_s']:,.0f} nt/s")
                interval.reset(time.perf_counter())
            if step % options.eval_every == 0 or step == steps:
                validate()
                busy = True
            stopping = packed[2].item() > 0
            paused = options.stop_after is not None and session_steps >= options.stop_after
            if step % options.save_every == 0 or step == steps or stopping or paused:
                save()
                busy = True
            if busy:
                interval.started = time.perf_counter()
            if on_step is not None:
                on_step(step, result.last or {})
            if stopping or paused:
                result.status = "interrupted" if stopping else "paused"
                break
    if last_eval != step and result.status == "finished":
        validate()
    if last_saved != step:
        save()
    if metrics is not None:
        metrics.close()
    result.step = step
    return result


def _describe(record: dict) -> str:
    ratios = "/".join(
        f"{record[k]:.2f}" for k in sorted(record) if k.startswith("compression_")
    )
    text = f"step {record['step']} loss {record['loss']:.4f} bpb {record['bpb']:.4f}"
    return text + (f" L/L' {ratios}" if ratios else "")


def _nonfinite_message(what: str, step: int, last_saved: int | None, run_dir: Path) -> str:
    if last_saved is None:
        kept = "no checkpoint was written yet"
    else:
        path = run_dir / ckpt.CHECKPOINTS / ckpt.checkpoint_name(last_saved)
        kept = f"the last good checkpoint is {path}"
    return (f"non-finite {what} at step {step}: training stopped; {kept} "
            "(try a lower --lr or --precision fp32)")
