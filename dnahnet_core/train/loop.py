"""The training loop behind ``dnahnet train``: a run, its state, one step, the loop.

``start_run`` builds everything a run needs (``Run``) and the counters a checkpoint
saves (``RunState``, restored on ``--resume``). ``train_step`` is one optimizer step:
this rank's ``grad_accum`` micro-batches (see ``data.py``), loss = NLL / (valid
nucleotides of the global batch) + alpha * mean ratio loss, backward (DDP all-reduces
the gradients on the last micro-batch), one small all-reduce of the step's statistics,
a finiteness check, clipping and AdamW. ``_train`` is the loop: schedule, step, log,
validate, save. Rank 0 alone writes metrics and checkpoints.

Stopping: a first Ctrl-C (SIGINT) or a SIGTERM (SLURM pre-emption, torchrun
shutting down) finishes the current step on every rank, saves a checkpoint and
returns ``status="interrupted"`` (``"terminated"`` for SIGTERM); a second Ctrl-C aborts
at once. ``--stop-after`` and ``--time-limit`` end the session with a checkpoint too
(``status="paused"``). A non-finite loss or gradient norm stops before the optimizer
step with a ``DnahnetError`` naming the step; the checkpoints already written stay
untouched. A new run that fails before its first checkpoint removes what it wrote
(nothing to resume).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from dnahnet_core.data.markov import baseline_lines, dataset_baselines
from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import atomic_open
from dnahnet_core.model.config import CONFIG
from dnahnet_core.progress import interactive, log, progress
from dnahnet_core.train import checkpoint as ckpt
from dnahnet_core.train import distributed
from dnahnet_core.train.compile import compiled_for_training
from dnahnet_core.train.data import ShardedBatches
from dnahnet_core.train.distributed import World
from dnahnet_core.train.evaluate import evaluate_split
from dnahnet_core.train.graphs import graphed_for_training
from dnahnet_core.train.metrics import (
    METRICS,
    TENSORBOARD,
    Interval,
    MetricsLog,
    stage_stats,
    token_nll,
    truncate_metrics,
)
from dnahnet_core.train.optim import WarmupCosine, build_optimizer, default_warmup
from dnahnet_core.train.options import RUN_OPTIONS, TrainOptions, total_steps
from dnahnet_core.train.precision import autocast, resolve_precision


@dataclass
class TrainResult:
    step: int
    # "finished", "interrupted" (SIGINT), "terminated" (SIGTERM), "paused" (--stop-after,
    # --time-limit)
    status: str
    run_dir: Path
    checkpoint: Path | None = None
    last: dict | None = None
    val: dict | None = None
    history: list[dict] = field(default_factory=list)


class NonFinite(DnahnetError):
    """Raised when the loss or the gradient norm is NaN or infinite."""


@dataclass
class Run:
    """Everything a training run needs, built once by ``start_run``."""

    options: TrainOptions
    world: World
    run_dir: Path
    precision: str
    model: nn.Module  # the plain model: optimizer, clipping, checkpoints, validation
    net: nn.Module | Callable  # what the step calls: the model, DDP-wrapped, compiled or graphed
    optimizer: torch.optim.Optimizer
    schedule: WarmupCosine
    stream: ShardedBatches
    steps: int  # the optimizer steps of the whole run
    warmup: int
    train_set: object
    val_set: object
    save_weights: ckpt.SaveWeights
    metrics: MetricsLog | None  # rank 0 only
    result: TrainResult

    @property
    def device(self) -> torch.device:
        return self.world.device


@dataclass
class RunState:
    """The counters a checkpoint saves (restored on --resume), and this session's marks."""

    step: int = 0
    samples_seen: int = 0
    tokens_seen: int = 0
    val: dict | None = None  # the last validation
    last_saved: int | None = None  # step of the last checkpoint written or resumed from
    last_eval: int | None = None
    session_steps: int = 0


@dataclass
class StepStats:
    """One optimizer step, summed over micro-batches and ranks."""

    nll_sum: float  # nats over the valid nucleotides of the global batch
    nucleotides: float
    ratio_loss: float  # mean over micro-batches and ranks (unweighted)
    grad_norm: float  # before clipping
    stages: torch.Tensor  # [S, 3] mean (compression, mean_prob, selected) per stage
    stop_requested: bool  # on any rank


class _StopRequest:
    """First SIGINT/SIGTERM: finish the step and save. Second SIGINT: abort."""

    def __init__(self) -> None:
        self.requested = False
        self.signal: int | None = None  # the first one received here
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not self.requested:
            log("stop requested: finishing this step and saving a checkpoint "
                "(Ctrl-C again to abort without saving)")
        self.requested = True
        self.signal = self.signal or signum

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


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
    options.check()
    world = distributed.setup(options.device)
    new_paths = [] if resume else _new_run_paths(Path(options.out))
    run = None
    try:
        run, state = start_run(options, resume, world, model, train_set, val_set, save_weights)
        return _train(run, state, on_step, show_progress)
    except BaseException:  # inside start_run too: it writes run.json before it returns
        if run is None or state.last_saved is None:
            if run is not None and run.metrics is not None:
                run.metrics.close()
            if world.is_main:
                _discard(Path(options.out), new_paths)
        raise
    finally:
        if run is not None:
            run.net = None  # DDP holds the process group: release it before the teardown
        distributed.teardown()


def _new_run_paths(run_dir: Path) -> list[Path]:
    """What a new run will write before its first checkpoint and did not exist yet."""
    paths = [run_dir / name for name in (RUN_OPTIONS, METRICS, TENSORBOARD)]
    return [path for path in [*paths, run_dir] if not path.exists()]


def _discard(run_dir: Path, new_paths: list[Path]) -> None:
    """A new run that failed before its first checkpoint cannot be resumed: remove what it
    wrote, so that the same command can simply be run again."""
    for path in new_paths:
        with contextlib.suppress(OSError):
            if path == run_dir:
                path.rmdir()  # only if nothing else is in it (it comes last)
            elif path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def _train(run: Run, state: RunState, on_step, show_progress) -> TrainResult:
    options, result = run.options, run.result
    interval = Interval()
    started = time.perf_counter()
    interval.reset(started)
    show = run.world.is_main and (interactive() if show_progress is None else show_progress)
    with _StopRequest() as stop, progress("steps", enabled=show) as bar:
        task = bar.add_task("training", total=run.steps, completed=state.step, rate="")
        while state.step < run.steps:
            if _out_of_time(run, state, started):
                result.status = "paused"
                break
            lr = run.schedule.apply(run.optimizer, state.step)
            stats = train_step(run, state, stop.requested)

            state.step += 1
            state.session_steps += 1
            state.samples_seen += run.stream.global_batch
            state.tokens_seen += int(stats.nucleotides)
            interval.add(
                loss=stats.nll_sum / stats.nucleotides
                + options.ratio_loss_weight * stats.ratio_loss,
                nll_sum=stats.nll_sum, count=stats.nucleotides, ratio=stats.ratio_loss,
                grad_norm=stats.grad_norm, stages=stats.stages,
            )
            bar.update(task, completed=state.step)
            last = state.step == run.steps
            busy = False  # validation and checkpoints do not count as training time

            if state.step % options.log_every == 0 or last:
                record = interval.record(step=state.step, tokens=state.tokens_seen, lr=lr,
                                         now=time.perf_counter())
                result.last = record
                if run.metrics is not None:
                    _write_record(run, record)
                    bar.update(task, description=_describe(record),
                               rate=f"{record['nt_per_s']:,.0f} nt/s")
                    if not show:
                        log(_describe(record) + f" lr {lr:.2e} {record['nt_per_s']:,.0f} nt/s")
                interval.reset(time.perf_counter())
            if state.step % options.eval_every == 0 or last:
                validate(run, state)
                busy = True
            stopping = stats.stop_requested
            paused = options.stop_after is not None and state.session_steps >= options.stop_after
            if state.step % options.save_every == 0 or last or stopping or paused:
                save(run, state)
                busy = True
            if busy:
                interval.started = time.perf_counter()
            if on_step is not None:
                on_step(state.step, result.last or {})
            if stopping or paused:
                result.status = "paused"
                if stopping:  # SIGINT here, or a stop requested on another rank
                    result.status = ("terminated" if stop.signal == signal.SIGTERM
                                     else "interrupted")
                break
    if state.last_eval != state.step and result.status == "finished":
        validate(run, state)
    if state.last_saved != state.step:
        save(run, state)
    if run.metrics is not None:
        run.metrics.close()
    result.step = state.step
    return result


def _out_of_time(run: Run, state: RunState, started: float) -> bool:
    """Would the next step, at this session's mean pace (validations and checkpoints
    included), end past --time-limit? Decided on every rank alike (a tiny all-reduce)."""
    if run.options.time_limit is None:
        return False
    elapsed = time.perf_counter() - started
    pace = elapsed / state.session_steps if state.session_steps else 0.0
    late = float(elapsed + pace > 60 * run.options.time_limit)
    if run.world.distributed:
        late = run.world.all_reduce_sum(torch.tensor([late], device=run.device)).item()
    return late > 0


def train_step(run: Run, state: RunState, stop_requested: bool) -> StepStats:
    """One optimizer step on the next global batch (this rank's micro-batches)."""
    world, device, net = run.world, run.device, run.net
    micro = run.options.grad_accum
    batches = run.stream.step(state.samples_seen)
    count = torch.tensor(float(sum(int(m.sum()) for _, m in batches)), device=device)
    global_count = world.all_reduce_sum(count.clone())
    nll_sum = torch.zeros((), device=device)
    ratio_sum = torch.zeros((), device=device)
    stages = None
    for k, (tokens, mask) in enumerate(batches):
        tokens, mask = tokens.to(device), mask.to(device)
        sync = world.distributed and k < micro - 1  # DDP all-reduces on the last micro-batch
        with net.no_sync() if sync else contextlib.nullcontext():
            with autocast(device, run.precision):
                out = net(tokens, mask)
            nll = token_nll(out.logits, tokens, mask)
            ratio = out.ratio_loss if out.ratio_loss is not None else 0.0
            ratio = torch.as_tensor(ratio, device=device).float()
            loss = (nll * world.world_size / global_count
                    + run.options.ratio_loss_weight * ratio / micro)
            loss.backward()
        nll_sum += nll.detach()
        ratio_sum += ratio.detach()
        st = stage_stats(out, device)
        stages = st if stages is None else stages + st
    flag = torch.tensor([1.0 if stop_requested else 0.0], device=device)
    packed = torch.cat([nll_sum.view(1), ratio_sum.view(1), flag, stages.reshape(-1)])
    world.all_reduce_sum(packed)  # one small all-reduce for the whole step's statistics
    parts = micro * world.world_size
    nll_total, ratio_mean = packed[0].item(), packed[1].item() / parts
    if not (math.isfinite(nll_total) and math.isfinite(ratio_mean)):
        raise NonFinite(_nonfinite_message("loss", run, state))
    clip = run.options.grad_clip if run.options.grad_clip > 0 else math.inf
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), clip).item()
    if not math.isfinite(grad_norm):
        raise NonFinite(_nonfinite_message("gradient norm", run, state))
    run.optimizer.step()
    # a graphed step needs its gradients kept (graphs.py)
    run.optimizer.zero_grad(set_to_none=not getattr(net, "keeps_gradients", False))
    return StepStats(
        nll_sum=nll_total, nucleotides=global_count.item(), ratio_loss=ratio_mean,
        grad_norm=grad_norm, stages=packed[3:].view(-1, 3) / parts,
        stop_requested=packed[2].item() > 0,
    )


def start_run(
    options: TrainOptions,
    resume: bool,
    world: World,
    model: nn.Module | None = None,
    train_set=None,
    val_set=None,
    save_weights: ckpt.SaveWeights | None = None,
) -> tuple[Run, RunState]:
    """The run (data, model, optimizer, schedule, metrics) and its state, resumed if asked."""
    run_dir = Path(options.out)
    device = world.device
    precision = resolve_precision(options.precision, device)
    checkpoint = ckpt.latest_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None:
        raise DnahnetError(f"--resume: no checkpoint in {run_dir}")
    if checkpoint is not None and world.is_main:
        newest = ckpt.checkpoint_step(checkpoint)
        for step, path in ckpt.list_checkpoints(run_dir, complete=False):
            if step > newest:  # damaged after it was written: save_checkpoint never leaves one
                log(f"resume: skipping {path}: it has no {ckpt.STATE_DIR}/state.json "
                    f"(an incomplete checkpoint); resuming from {checkpoint.name}")
    if train_set is None:
        train_set, val_set = _open_datasets(options)
        if world.is_main and (val_set is None or len(val_set) == 0):
            log(f"warning: --data {options.data}: the val split is empty; this run will not "
                "validate (held-out bits per nucleotide)")
    if len(train_set) == 0:
        raise DnahnetError(f"--data {options.data}: the train split is empty")
    step_fragments = options.batch_size * options.grad_accum * world.world_size
    if step_fragments > len(train_set):  # it would repeat fragments within one step
        processes = f" x {world.world_size} processes" if world.world_size > 1 else ""
        raise DnahnetError(
            f"--batch-size {options.batch_size} x --grad-accum {options.grad_accum}{processes}: "
            f"a step would take {step_fragments:,} fragments, more than the {len(train_set):,} "
            f"of the train split of {options.data}"
        )
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
    optimizer = build_optimizer(model, options.lr, options.weight_decay)

    state = RunState()
    torch.manual_seed(options.seed + 1000 * world.rank)
    if checkpoint is not None:
        saved = ckpt.load_checkpoint(checkpoint, model, optimizer, rank=world.rank,
                                     world_size=world.world_size)
        if not all(isinstance(saved.get(key), int) for key in ("samples_seen", "tokens")):
            raise ckpt.damaged(checkpoint, checkpoint / ckpt.STATE_DIR / "state.json",
                               "not a training state")
        state = RunState(step=saved["step"], samples_seen=saved["samples_seen"],
                         tokens_seen=saved["tokens"], val=saved.get("val"),
                         last_saved=saved["step"], last_eval=saved["step"])
        if world.is_main:
            log(f"resuming {run_dir} from step {state.step} ({checkpoint.name})")
            if not all((run_dir / name).is_file() for name in ckpt.MODEL_FILES):
                ckpt.publish_model(run_dir, checkpoint)  # removed by hand or by a workflow
    done_batch = state.samples_seen // state.step if state.step else None
    steps = total_steps(options, stream.global_batch, fragment_length, state.step, done_batch)
    if world.is_main and options.tokens is not None and done_batch not in (None,
                                                                            stream.global_batch):
        log(f"resume: the global batch is now {stream.global_batch} fragments (was "
            f"{done_batch}); --tokens {options.tokens:,} takes {steps} steps in all")
    warmup = options.warmup if options.warmup is not None else default_warmup(steps)
    if world.is_main and options.warmup is not None and warmup >= steps > state.step:
        log(f"warning: --warmup {warmup} is not shorter than the run's {steps} steps: "
            "the learning rate never reaches --lr")
    schedule = WarmupCosine(options.lr, warmup, steps, options.min_lr_ratio)

    net = model  # before anything is written: --cuda-graphs may refuse
    if world.distributed:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if options.compile:
        net = compiled_for_training(net, device)
    if options.cuda_graphs:
        net = graphed_for_training(model, world, precision)

    metrics = None
    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if checkpoint is not None:
            truncate_metrics(run_dir / METRICS, state.step)
        with atomic_open(run_dir / RUN_OPTIONS, "w") as handle:
            json.dump(options.to_dict(), handle, indent=2)
        metrics = MetricsLog(run_dir, options.tensorboard)

    result = TrainResult(step=state.step, status="finished", run_dir=run_dir)
    run = Run(options, world, run_dir, precision, model, net, optimizer, schedule, stream,
              steps, warmup, train_set, val_set, save_weights, metrics, result)
    if metrics is not None and checkpoint is None:
        record_baselines(run)
    return run, state


def record_baselines(run: Run) -> None:
    """Once per run: the uniform and Markov bits per nucleotide of the validation fragments,
    the trivial numbers its validation bpb has to beat (a ``"baseline"`` record)."""
    if run.val_set is None or len(run.val_set) == 0:
        return
    baselines = dataset_baselines(run.train_set, run.val_set, run.options.eval_fragments)
    if baselines:
        _write_record(run, {"kind": "baseline", "step": 0, "tokens": 0, **baselines})
        for line in baseline_lines(baselines):
            log(f"validation {line}")


def save(run: Run, state: RunState) -> Path:
    """A checkpoint of this step (every rank takes part: the RNG states are gathered)."""
    options, world = run.options, run.world
    rng = world.gather_objects(ckpt.capture_rng())
    path = run.run_dir / ckpt.CHECKPOINTS / ckpt.checkpoint_name(state.step)
    if world.is_main:
        meta = {"step": state.step, "tokens": state.tokens_seen, "val": state.val,
                "config_source": options.config, "data": options.data}
        saved = {"samples_seen": state.samples_seen, "tokens": state.tokens_seen,
                 "epoch": state.samples_seen // len(run.train_set), "total_steps": run.steps,
                 "warmup": run.warmup, "val": state.val, "options": options.to_dict()}
        path = ckpt.save_checkpoint(
            run.run_dir, step=state.step, model=run.model, optimizer=run.optimizer,
            state=saved, rng_per_rank=rng, metadata=meta, keep=options.keep,
            save_weights=run.save_weights,
        )
    state.last_saved = state.step
    run.result.checkpoint = path
    return path


def validate(run: Run, state: RunState) -> None:
    """Bits per nucleotide on the validation split (the first --eval-fragments)."""
    state.last_eval = state.step
    if run.val_set is None or len(run.val_set) == 0:
        return
    state.val = evaluate_split(
        run.model, run.val_set, batch_size=run.options.batch_size, device=run.device,
        precision=run.precision, max_fragments=run.options.eval_fragments, world=run.world,
    )
    run.result.val = state.val
    if run.metrics is not None:
        _write_record(run, {"kind": "val", "step": state.step, "tokens": state.tokens_seen,
                            **state.val})
        log(f"step {state.step}: validation bpb {state.val['bpb']:.4f}")


def _write_record(run: Run, record: dict) -> None:
    run.metrics.write(record)
    run.result.history.append(record)


def _open_datasets(options: TrainOptions):
    from dnahnet_core.data.dataset import FragmentDataset, check_data_option

    check_data_option(options.data)
    train_set = FragmentDataset(options.data, split="train")
    try:
        val_set = FragmentDataset(options.data, split="val")
    except DnahnetError:
        val_set = None
    return train_set, val_set


def _build_model(options: TrainOptions, checkpoint: Path | None):
    from dnahnet_core.model import build_model, load_config, save_model

    config = load_config(str(checkpoint / CONFIG) if checkpoint else options.config)
    model = build_model(config, seed=options.seed)

    def save_weights(module: nn.Module, directory: Path, metadata: dict) -> None:
        save_model(module, directory, metadata=metadata)

    return model, save_weights


def _describe(record: dict) -> str:
    ratios = "/".join(
        f"{record[k]:.2f}" for k in sorted(record) if k.startswith("compression_")
    )
    text = f"step {record['step']} loss {record['loss']:.4f} bpb {record['bpb']:.4f}"
    return text + (f" L/L' {ratios}" if ratios else "")


def _nonfinite_message(what: str, run: Run, state: RunState) -> str:
    if state.last_saved is None:
        kept = "no checkpoint was written yet"
    else:
        path = run.run_dir / ckpt.CHECKPOINTS / ckpt.checkpoint_name(state.last_saved)
        kept = f"the last good checkpoint is {path}"
    return (f"non-finite {what} at step {state.step + 1}: training stopped; {kept} "
            "(try a lower --lr or --precision fp32)")
