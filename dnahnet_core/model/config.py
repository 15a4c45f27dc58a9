"""Model configuration: a JSON file, or a named preset shipped in dnahnet_core/presets/.

`arch_layout` follows H-Net's nested form. A stage is `[encoder, inner, decoder]` where
`inner` is either another stage or `[main]`; layout strings are runs of layer codes:
`m4T1` = 4 Mamba2 layers then 1 attention (+ SwiGLU MLP) layer. An isotropic baseline is
`["T12"]` or `["m24"]` (no stage). Per-level lists (`d_model`, `d_intermediate`,
`num_heads`, `lr_multipliers`) run from the outermost level (nucleotides) inwards.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from dnahnet_core.errors import DnahnetError

_LAYOUT = re.compile(r"([mT])(\d+)")


@dataclass
class SSMConfig:
    d_state: int = 32
    headdim: int = 32
    expand: int = 2
    d_conv: int = 4
    chunk_size: int = 64


@dataclass
class ModelConfig:
    name: str
    arch_layout: list
    d_model: list[int]
    d_intermediate: list[int]
    num_heads: list[int]
    target_ratios: list[float] = field(default_factory=list)
    lr_multipliers: list[float] = field(default_factory=list)
    attn_window: int = 1024  # sliding window of every level but the innermost
    ssm: SSMConfig = field(default_factory=SSMConfig)
    vocab_size: int = 5
    rope_base: float = 10000.0
    description: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.ssm, dict):
            self.ssm = SSMConfig(**self.ssm)
        levels = self.num_levels
        for key in ("d_model", "d_intermediate", "num_heads"):
            if len(getattr(self, key)) != levels:
                raise DnahnetError(
                    f"config {self.name}: {key} needs {levels} values (one per level), "
                    f"got {len(getattr(self, key))}"
                )
        if len(self.target_ratios) != levels - 1:
            raise DnahnetError(
                f"config {self.name}: target_ratios needs {levels - 1} values (one per stage)"
            )
        if not self.lr_multipliers:
            self.lr_multipliers = [1.0] * levels
        if len(self.lr_multipliers) != levels:
            raise DnahnetError(f"config {self.name}: lr_multipliers needs {levels} values")
        if any(r <= 1 for r in self.target_ratios):
            raise DnahnetError(f"config {self.name}: every target ratio must be > 1")
        if any(a > b for a, b in zip(self.d_model, self.d_model[1:])):
            raise DnahnetError(f"config {self.name}: d_model must not shrink inwards")
        for layout in self.layouts():
            parse_layout(layout)

    @property
    def num_stages(self) -> int:
        """Number of chunking stages (0 for an isotropic baseline)."""
        depth, node = 0, self.arch_layout
        while len(node) == 3:
            depth, node = depth + 1, node[1]
        return depth

    @property
    def num_levels(self) -> int:
        return self.num_stages + 1

    def layouts(self) -> list[str]:
        node, found = self.arch_layout, []
        while len(node) == 3:
            found += [node[0], node[2]]
            node = node[1]
        if len(node) != 1 or not isinstance(node[0], str):
            raise DnahnetError(f"config {self.name}: arch_layout malformed near {node!r}")
        return found + [node[0]]

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def parse_layout(layout: str) -> list[str]:
    """'m4T1' -> ['m','m','m','m','T']; errors on anything else."""
    if (
        not isinstance(layout, str)
        or "".join(m.group(0) for m in _LAYOUT.finditer(layout)) != layout
    ):
        raise DnahnetError(f"bad layout string {layout!r} (expected runs like 'm4T1')")
    return [code for code, count in _LAYOUT.findall(layout) for _ in range(int(count))]


def _preset_dir():
    return resources.files("dnahnet_core") / "presets"


def list_presets() -> list[str]:
    return sorted(
        p.name[: -len(".json")] for p in _preset_dir().iterdir() if p.name.endswith(".json")
    )


def config_from_dict(data: dict, where: str = "config") -> ModelConfig:
    try:
        return ModelConfig(**data)
    except TypeError as error:
        raise DnahnetError(f"{where}: {error}") from None


def load_config(name_or_path: str | Path) -> ModelConfig:
    """A preset name (see `list_presets`), a config.json, or a model directory."""
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "config.json"
    if path.suffix == ".json" and path.exists():
        source = path
    elif str(name_or_path) in list_presets():
        source = _preset_dir() / f"{name_or_path}.json"
    else:
        raise DnahnetError(
            f"unknown model config {str(name_or_path)!r}: not a file, and not a preset "
            f"({', '.join(list_presets())})"
        )
    try:
        data = json.loads(source.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DnahnetError(f"{source}: not valid JSON ({error})") from None
    data = data.get("model", data)  # a run's config.json nests the model config
    return config_from_dict(data, where=str(source))
