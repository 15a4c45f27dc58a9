"""A model is a directory: config.json + model.safetensors (+ metadata.json). Never pickle."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import atomic_open, atomic_path
from dnahnet_core.model.config import (
    CONFIG,
    METADATA,
    WEIGHTS,
    ModelConfig,
    list_presets,
    load_config,
)
from dnahnet_core.model.lm import DnaLM


def build_model(cfg: ModelConfig, seed: int = 0, where: str | None = None) -> DnaLM:
    """A freshly initialised model (deterministic for a seed); ``where`` names the config's
    file or preset in errors."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return _new_model(cfg, where)
    finally:
        torch.random.set_rng_state(generator_state)


def _new_model(cfg: ModelConfig, where: str | None) -> DnaLM:
    """``DnaLM(cfg)``; a config whose tensors could not exist on any machine (torch: "Storage
    size calculation overflowed") is a clear error about the config, not a crash."""
    try:
        return DnaLM(cfg)
    except RuntimeError as error:
        if "overflow" not in str(error):
            raise
        raise DnahnetError(
            f"{where or f'config {cfg.name}'}: the model is too large to build ({error}); "
            "check its widths (d_model, d_intermediate, ssm) and layer counts"
        ) from None


def default_model_dir() -> Path:
    return Path(str(resources.files("dnahnet_core") / "default_model"))


def save_model(
    model: DnaLM,
    directory: str | Path,
    metadata: dict | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Write the model directory; `dtype` (e.g. float16) shrinks the weights file.

    Loading always restores float32 parameters (values rounded to `dtype`).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to(dtype or v.dtype).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    with atomic_path(directory / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "config": model.config.name})
    with atomic_open(directory / CONFIG) as handle:
        handle.write(model.config.to_json())
    if metadata is not None:
        with atomic_open(directory / METADATA) as handle:
            json.dump(metadata, handle, indent=2)
            handle.write("\n")


def load_model(source: str | Path | None = None, device: str | torch.device = "cpu") -> DnaLM:
    """Load a model directory; None means the packaged default model.

    A preset name builds an untrained model (seed 0), which is useful for trying things.
    """
    if source is None:
        source = default_model_dir()
        if not (source / WEIGHTS).exists():
            raise DnahnetError(
                "no default model is installed with this package; pass --model DIR "
                "(a trained model directory) or --config PRESET"
            )
    path = Path(source)
    if not path.exists() and str(source) in list_presets():
        return build_model(load_config(str(source)), where=str(source)).to(device).eval()
    if not path.is_dir():
        raise DnahnetError(f"{source}: not a model directory (expected {CONFIG} + {WEIGHTS})")
    model = build_model(check_model_directory(path), where=str(path / CONFIG))
    try:
        weights = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError) as error:
        raise DnahnetError(f"{path / WEIGHTS}: cannot read weights ({error})") from None
    for key, tensor in weights.items():  # a diverged or damaged model scores everything NaN
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise DnahnetError(
                f"{path / WEIGHTS}: tensor {key!r} holds NaN or infinite values (the model "
                "is damaged or its training diverged)"
            )
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise DnahnetError(
            f"{path / WEIGHTS}: weights do not match {CONFIG} "
            f"(missing {len(missing)}, unexpected {len(unexpected)}, "
            f"e.g. {(missing or unexpected)[0]})"
        )
    return model.to(device).eval()


def check_model_directory(directory: str | Path) -> ModelConfig:
    """The directory's config, once its weights file is known to fit it (nothing built).

    Reads only the safetensors header; every tensor the config needs must be there
    with the shape the config gives it. Errors name the file and the tensor.
    """
    path = Path(directory)
    for name in (WEIGHTS, CONFIG):
        if not (path / name).is_file():
            raise DnahnetError(f"{path}: no {name} in this model directory")
    config = load_config(path / CONFIG)
    weights = path / WEIGHTS
    try:
        with safe_open(str(weights), framework="pt") as handle:
            found = {key: list(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise DnahnetError(f"{weights}: cannot read weights ({error})") from None
    with torch.device("meta"):
        model = _new_model(config, str(path / CONFIG))
        needed = {key: list(t.shape) for key, t in model.state_dict().items()}
    for key, shape in needed.items():
        if key not in found:
            raise DnahnetError(
                f"{weights}: no tensor {key!r}, which {path / CONFIG} needs "
                f"({len(set(needed) - set(found))} of {len(needed)} missing)"
            )
        if found[key] != shape:
            raise DnahnetError(
                f"{weights}: tensor {key!r} has shape {found[key]}, but {path / CONFIG} "
                f"needs {shape}"
            )
    extra = sorted(set(found) - set(needed))
    if extra:
        raise DnahnetError(
            f"{weights}: tensor {extra[0]!r} is not part of the model {path / CONFIG} "
            f"describes ({len(extra)} unexpected)"
        )
    return config


def load_metadata(directory: str | Path) -> dict:
    path = Path(directory) / METADATA
    return json.loads(path.read_text()) if path.exists() else {}
