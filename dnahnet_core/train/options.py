"""The options of a training run (``RUNDIR/run.json``) and how a session resolves them.

    options = resolve_options({"data": "prep", "config": "dnahnet-tiny", "out": "run"},
                              resume=False)
    options.check()          # ranges; ``train`` calls it
    steps = total_steps(options, global_batch, fragment_length)

On ``--resume`` the run's saved options are the defaults and the given values override
them; the options in ``TrainOptions.SESSION`` may change between sessions without
changing what the run is.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from pathlib import Path

from dnahnet_core.errors import DnahnetError
from dnahnet_core.progress import log
from dnahnet_core.train import checkpoint as ckpt

RUN_OPTIONS = "run.json"  # in the run directory: the options of its last session

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
    weight_decay: float = 0.05  # the paper's recipe (DESIGN.md)
    grad_clip: float = 1.0
    ratio_loss_weight: float = 0.02  # 0.03 (H-Net, text) is too strong for DNA
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False  # torch.compile the model (compile.py)
    cuda_graphs: bool = False  # replay the steps from CUDA graphs (graphs.py)
    rc_augment: bool = True  # random reverse-complement augmentation
    log_every: int = 10
    eval_every: int = 200
    eval_fragments: int = 256
    save_every: int = 500
    keep: int = 3
    tensorboard: bool = False
    stop_after: int | None = None  # steps in this session; the schedule still follows max_steps
    time_limit: float | None = None  # minutes of training in this session (then save and stop)

    # options that may differ between the sessions of one run without changing its meaning
    SESSION = ("out", "data", "device", "resume", "stop_after", "time_limit", "tensorboard",
               "log_every", "eval_every", "eval_fragments", "save_every", "keep", "max_steps",
               "tokens", "compile", "cuda_graphs")
    # names that runs saved before a rename still use
    RENAMED = {"reverse_complement": "rc_augment"}

    @classmethod
    def from_values(cls, values: dict, where: str = "") -> TrainOptions:
        """``where``: the file the values come from (named in errors)."""
        prefix = f"{where}: " if where else ""
        values = _current_names(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise DnahnetError(f"{prefix}unknown training option(s): "
                               f"{', '.join(sorted(unknown))}")
        hints = typing.get_type_hints(cls)
        for name, value in values.items():
            number = isinstance(value, int) and not isinstance(value, bool)
            if not (isinstance(value, hints[name]) or number and _takes_float(hints[name])):
                raise DnahnetError(f"{prefix}training option {name!r} is {value!r}, not "
                                   f"{_type_name(hints[name])}")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check(self) -> None:
        for name in ("batch_size", "grad_accum", "log_every", "eval_every", "save_every", "keep"):
            if getattr(self, name) < 1:
                raise DnahnetError(f"--{name.replace('_', '-')}: must be at least 1")
        if self.lr <= 0:
            raise DnahnetError("--lr: must be positive")
        if self.max_steps is not None and self.max_steps < 1:
            raise DnahnetError("--max-steps: must be at least 1")
        if self.compile and self.cuda_graphs:
            raise DnahnetError("--compile and --cuda-graphs: choose one")
        if self.time_limit is not None and not 0 < self.time_limit < math.inf:
            raise DnahnetError("--time-limit: must be a positive number of minutes")


def _takes_float(hint) -> bool:
    return hint is float or float in typing.get_args(hint)


def _type_name(hint) -> str:
    names = {int: "a whole number", float: "a number", bool: "true or false", str: "a string",
             type(None): "null"}
    return " or ".join(names.get(t, str(t)) for t in (typing.get_args(hint) or (hint,)))


def _current_names(values: dict) -> dict:
    return {TrainOptions.RENAMED.get(k, k): v for k, v in values.items()}


def resolve_options(values: dict, resume: bool) -> TrainOptions:
    """Options for this session: on resume, the run's saved options overridden by ``values``."""
    values = {k: v for k, v in values.items() if v is not None}
    if not values.get("out"):
        raise DnahnetError("--out: a run directory is required")
    run_dir = Path(values["out"])
    if resume:
        saved_path = run_dir / RUN_OPTIONS
        if ckpt.latest_checkpoint(run_dir) is None or not saved_path.is_file():
            raise DnahnetError(f"--resume: no checkpoint in {run_dir}")
        try:
            saved = json.loads(saved_path.read_text())
        except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError too
            saved = None
        if not isinstance(saved, dict):
            state = ckpt.latest_checkpoint(run_dir) / ckpt.STATE_DIR / "state.json"
            raise DnahnetError(
                f"{saved_path}: not a JSON object of training options; restore it (the run's "
                f"options are also under \"options\" in {state})"
            )
        saved = _current_names(saved)
        for limit in ("stop_after", "time_limit"):  # limits of the previous session only
            saved.pop(limit, None)
        if "config" in values and values["config"] != saved.get("config"):
            raise DnahnetError(
                f"--config {values['config']}: a run's model cannot change on --resume "
                f"(the run in {run_dir} is {saved.get('config')}); leave --config out, or "
                "start a new run in another directory"
            )
        if "max_steps" in values or "tokens" in values:  # a new length replaces the old one
            saved["max_steps"] = saved["tokens"] = None
        changed = [
            k for k, v in values.items()
            if k in saved and saved[k] != v and k not in TrainOptions.SESSION
        ]
        if changed:
            log(f"resume: overriding the run's {', '.join(changed)}")
        if "data" in values and values["data"] != saved.get("data"):
            log(f"resume: training data {values['data']} (the run so far: {saved.get('data')})")
        saved.update(values)
        return TrainOptions.from_values(saved, where=str(saved_path))
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


def total_steps(options: TrainOptions, global_batch: int, fragment_length: int,
                done_steps: int = 0, done_batch: int | None = None) -> int:
    """--max-steps, or the steps that --tokens takes at this global batch. A resumed run
    whose global batch changed (--batch-size, --grad-accum, processes) keeps its
    ``done_steps`` at the old ``done_batch`` and takes the rest of the nucleotides at the
    new one."""
    if options.max_steps is not None and options.tokens is not None:
        raise DnahnetError("give --max-steps or --tokens, not both")
    if options.tokens is not None:
        per_step = global_batch * fragment_length
        if done_steps and done_batch and done_batch != global_batch:
            left = options.tokens - done_steps * done_batch * fragment_length
            return done_steps + max(0, math.ceil(left / per_step))
        return max(1, math.ceil(options.tokens / per_step))
    return options.max_steps if options.max_steps is not None else DEFAULT_MAX_STEPS
