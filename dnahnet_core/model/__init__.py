"""The dnaHNet model and its baselines; see docs/INTERFACES.md for the API."""

from dnahnet_core.model.config import ModelConfig, list_presets, load_config
from dnahnet_core.model.lm import DnaLM, LMOutput, ModelState, StageStats
from dnahnet_core.model.serialization import (
    build_model,
    default_model_dir,
    load_metadata,
    load_model,
    save_model,
)

__all__ = [
    "DnaLM",
    "LMOutput",
    "ModelConfig",
    "ModelState",
    "StageStats",
    "build_model",
    "default_model_dir",
    "list_presets",
    "load_config",
    "load_metadata",
    "load_model",
    "save_model",
]
