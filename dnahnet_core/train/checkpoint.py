"""Checkpoints of a training run: the model alone plus a training state, never pickled.

Layout of a run directory::

    RUNDIR/config.json, model.safetensors, metadata.json   latest model (usable as --model)
    RUNDIR/run.json                                          training options of the run
    RUNDIR/metrics.jsonl                                     one JSON object per logged step
    RUNDIR/checkpoints/step-000100/                          the last k checkpoints, each:
        config.json, model.safetensors, metadata.json        the model at that step
        train_state/optimizer.safetensors                    AdamW moments, by parameter index
        train_state/rng.safetensors                          torch RNG states, per rank
        train_state/state.json                               step, data position, optimizer
                                                             hyper-parameters, schedule

Tensors go to safetensors, scalars to JSON, so loading a checkpoint never runs
pickle. Each checkpoint directory is built under a temporary name and renamed
when complete, so a crash leaves either the old or the new checkpoint, never a
half-written one (the temporary ``.step-NNNNNN.*.tmp`` names are ignored, then
pruned); the run-level model files are then replaced one by one atomically.
Resuming reads the newest complete checkpoint directory. A ``step-NNNNNN`` without
``train_state/state.json`` was damaged after it was written (this module never
leaves one): it is skipped, and ``start_run`` says so. A checkpoint whose files
cannot be read is an error naming the file, never a silent step back.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import atomic_directory, atomic_path
from dnahnet_core.model.config import CONFIG, METADATA, WEIGHTS

CHECKPOINTS = "checkpoints"
STATE_DIR = "train_state"
MODEL_FILES = (CONFIG, WEIGHTS, METADATA)
_STEP_DIR = re.compile(r"^step-(\d+)$")

SaveWeights = Callable[[nn.Module, Path, dict], None]


def plain_save_weights(model: nn.Module, directory: Path, metadata: dict) -> None:
    """Weights + metadata for modules that are not dnahnet models (tests, experiments)."""
    save_model(model, str(Path(directory) / WEIGHTS))
    (Path(directory) / METADATA).write_text(json.dumps(metadata, indent=2) + "\n")


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def list_checkpoints(run_dir: str | Path, complete: bool = True) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first; ``complete=False``: the ``step-NNNNNN``
    directories without a training state instead (``save_checkpoint`` renames only
    complete directories into place, so these were damaged or emptied since)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        step = checkpoint_step(path)
        if step is not None and path.is_dir() and (
                path / STATE_DIR / "state.json").is_file() == complete:
            found.append((step, path))
    return sorted(found)


def checkpoint_step(checkpoint: str | Path) -> int | None:
    """The step a ``step-NNNNNN`` directory was saved at (None: not a checkpoint's name)."""
    match = _STEP_DIR.match(Path(checkpoint).name)
    return int(match.group(1)) if match else None


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def damaged(checkpoint: str | Path, what: str | Path, reason: str) -> DnahnetError:
    """The error for an unreadable file ``what`` of ``checkpoint``, with what to do."""
    checkpoint = Path(checkpoint)
    step = checkpoint_step(checkpoint)
    older = [path for s, path in list_checkpoints(checkpoint.parent.parent)
             if step is not None and s < step]
    advice = (f"remove {checkpoint} and --resume continues from {older[-1].name}" if older
              else "there is no older checkpoint to resume from")
    return DnahnetError(f"{what}: damaged checkpoint ({reason}); {advice}")


# --- optimizer and RNG state <-> safetensors + JSON -------------------------------------------


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into named tensors and JSON-able hyper-parameters."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for index, entries in state_dict["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"state.{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [dict(group) for group in state_dict["param_groups"]]
    for group in groups:
        if isinstance(group.get("betas"), tuple):
            group["betas"] = list(group["betas"])
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_files(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    for index, entries in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def capture_rng() -> dict[str, torch.Tensor]:
    """This process's torch RNG states (CPU and every visible CUDA device)."""
    states = {"cpu": torch.get_rng_state().clone()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, value in enumerate(torch.cuda.get_rng_state_all()):
            states[f"cuda{index}"] = value.clone()
    return states


def restore_rng(states: dict[str, torch.Tensor]) -> None:
    if "cpu" in states:
        torch.set_rng_state(states["cpu"])
    cuda = [states[k] for k in sorted(states) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])


# --- saving and loading -----------------------------------------------------------------------


def save_checkpoint(
    run_dir: str | Path,
    *,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict,
    rng_per_rank: list[dict[str, torch.Tensor]],
    metadata: dict,
    keep: int = 3,
    save_weights: SaveWeights = plain_save_weights,
) -> Path:
    """Write ``checkpoints/step-NNNNNN`` atomically, refresh the run-level model files and
    delete all but the newest ``keep`` checkpoints. Returns the checkpoint directory."""
    run_dir = Path(run_dir)
    target = run_dir / CHECKPOINTS / checkpoint_name(step)
    tensors, optimizer_meta = optimizer_to_files(optimizer)
    rng = {
        f"rank{rank}.{name}": value.contiguous()
        for rank, states in enumerate(rng_per_rank)
        for name, value in states.items()
    }
    with atomic_directory(target, overwrite=True) as tmp:  # the run's own checkpoint
        save_weights(model, tmp, metadata)
        state_dir = tmp / STATE_DIR
        state_dir.mkdir()
        save_file(tensors, str(state_dir / "optimizer.safetensors"))
        save_file(rng, str(state_dir / "rng.safetensors"))
        payload = dict(state, step=step, optimizer=optimizer_meta, world_size=len(rng_per_rank))
        (state_dir / "state.json").write_text(json.dumps(payload, indent=1) + "\n")
    publish_model(run_dir, target)
    prune_checkpoints(run_dir, keep)
    return target


def publish_model(run_dir: str | Path, checkpoint: str | Path) -> None:
    """The run directory is a model directory: the model files of ``checkpoint``."""
    for name in MODEL_FILES:
        source = Path(checkpoint) / name
        if source.is_file():
            with atomic_path(Path(run_dir) / name) as tmp_file:
                shutil.copyfile(source, tmp_file)


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints and leftovers of interrupted writes."""
    root = Path(run_dir) / CHECKPOINTS
    for _, path in list_checkpoints(run_dir)[: -max(1, keep)]:
        shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(".step-*.tmp"):
        shutil.rmtree(path, ignore_errors=True)


def load_checkpoint(
    checkpoint: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    rank: int = 0,
    world_size: int = 1,
) -> dict:
    """Load weights (and optimizer + this rank's RNG state) from a checkpoint directory.

    Returns the JSON training state (step, data position, ...).
    """
    checkpoint = Path(checkpoint)
    state_dir = checkpoint / STATE_DIR
    state_path = state_dir / "state.json"
    if not state_path.is_file():
        raise DnahnetError(f"{checkpoint}: not a complete training checkpoint")
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError too
        raise damaged(checkpoint, state_path, "not readable JSON") from error
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or (
        optimizer is not None and not isinstance(state.get("optimizer"), dict)
    ):
        raise damaged(checkpoint, state_path, "not a training state")
    device = next(model.parameters()).device
    weights = checkpoint / WEIGHTS
    try:
        missing, unexpected = load_model(model, str(weights), strict=False, device=str(device))
    except (OSError, SafetensorError) as error:
        raise damaged(checkpoint, weights, "not a readable safetensors file") from error
    except RuntimeError as error:  # shapes that differ
        first = str(error).strip().splitlines()[-1].strip()
        raise DnahnetError(f"{checkpoint}: weights do not match the model ({first})") from None
    if missing or unexpected:
        raise DnahnetError(
            f"{checkpoint}: weights do not match the model "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )
    if optimizer is not None:
        path = state_dir / "optimizer.safetensors"
        tensors = _read_tensors(checkpoint, path)  # moved by AdamW
        try:
            optimizer_from_files(optimizer, tensors, state["optimizer"])
        except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as error:
            raise damaged(checkpoint, path, "not this model's optimizer state") from error
    path = state_dir / "rng.safetensors"
    rng = _read_tensors(checkpoint, path)
    if state.get("world_size") == world_size:
        prefix = f"rank{rank}."
        try:
            restore_rng({k[len(prefix) :]: v for k, v in rng.items() if k.startswith(prefix)})
        except (RuntimeError, TypeError, ValueError) as error:
            raise damaged(checkpoint, path, "not random number generator states") from error
    return state


def _read_tensors(checkpoint: Path, path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as error:
        raise damaged(checkpoint, path, "not a readable safetensors file") from error

