"""Model configuration: a JSON file, or a named preset shipped in dnahnet_core/presets/.

`arch_layout` follows H-Net's nested form. A stage is `[encoder, inner, decoder]` where
`inner` is either another stage or `[main]`; layout strings are runs of layer codes:
`m4T1` = 4 Mamba2 layers then 1 attention (+ SwiGLU MLP) layer. An isotropic baseline is
`["T12"]` or `["m24"]` (no stage). Per-level lists (`d_model`, `d_intermediate`,
`num_heads`, `lr_multipliers`) run from the outermost level (nucleotides) inwards.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.compression import TEXT_ENCODING

# The files of a model directory (docs/INTERFACES.md); weights in safetensors, never pickled.
CONFIG, WEIGHTS, METADATA = "config.json", "model.safetensors", "metadata.json"

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
        self._check_types()
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
        self._check_widths()

    def _check_types(self) -> None:
        """Every field has the JSON type and range the model needs (a clear line, not a crash)."""
        where = f"config {self.name}"
        if not isinstance(self.name, str):
            raise DnahnetError(f"config: name must be a string, got {self.name!r}")
        if not isinstance(self.arch_layout, list) or not self.arch_layout:
            raise DnahnetError(f"{where}: arch_layout must be a list like [\"T12\"]")
        _require_list(where, "d_model", self.d_model, _is_positive_int, "positive integers")
        for key in ("d_intermediate", "num_heads"):  # 0 where a level has no attention layer
            _require_list(where, key, getattr(self, key), _is_count, "integers >= 0")
        for key in ("target_ratios", "lr_multipliers"):
            _require_list(where, key, getattr(self, key), _is_positive_number, "positive numbers")
        for key in ("attn_window", "vocab_size"):
            if not _is_positive_int(getattr(self, key)):
                raise DnahnetError(
                    f"{where}: {key} must be a positive integer, got {getattr(self, key)!r}"
                )
        if self.vocab_size < 5:
            raise DnahnetError(f"{where}: vocab_size must be at least 5 (A, C, G, T, N)")
        if not _is_positive_number(self.rope_base):
            raise DnahnetError(f"{where}: rope_base must be a positive number")
        if not isinstance(self.description, str):
            raise DnahnetError(f"{where}: description must be a string")
        if not isinstance(self.ssm, SSMConfig):
            raise DnahnetError(f"{where}: ssm must be an object like {{\"d_state\": 32, ...}}")
        for key, value in asdict(self.ssm).items():
            if not _is_positive_int(value):
                raise DnahnetError(f"{where}: ssm.{key} must be a positive integer, got {value!r}")

    def _check_widths(self) -> None:
        """Widths that the layers of each level can split into heads."""
        where = f"config {self.name}"
        for level, codes in enumerate(self.level_layers()):
            width, heads = self.d_model[level], self.num_heads[level]
            if "T" in codes:
                for key in ("num_heads", "d_intermediate"):
                    if getattr(self, key)[level] == 0:
                        raise DnahnetError(
                            f"{where}: {key}[{level}] must be positive (level {level} has "
                            "attention layers)"
                        )
                if width % heads:
                    raise DnahnetError(
                        f"{where}: d_model[{level}] = {width} is not divisible by "
                        f"num_heads[{level}] = {heads}"
                    )
                if (width // heads) % 2:
                    raise DnahnetError(
                        f"{where}: attention head dimension d_model[{level}] / num_heads[{level}]"
                        f" = {width // heads} must be even (rotary embedding)"
                    )
            if "m" in codes and (self.ssm.expand * width) % self.ssm.headdim:
                raise DnahnetError(
                    f"{where}: ssm.expand * d_model[{level}] = {self.ssm.expand * width} is not "
                    f"divisible by ssm.headdim = {self.ssm.headdim}"
                )

    def level_layers(self) -> list[str]:
        """The layer codes of each level, outermost first (encoder + decoder, then main)."""
        layouts = self.layouts()
        stages = self.num_stages
        per_level = [
            "".join(parse_layout(layouts[2 * i]) + parse_layout(layouts[2 * i + 1]))
            for i in range(stages)
        ]
        return per_level + ["".join(parse_layout(layouts[-1]))]

    @property
    def num_stages(self) -> int:
        """Number of chunking stages (0 for an isotropic baseline)."""
        depth, node = 0, self.arch_layout
        while isinstance(node, list) and len(node) == 3:
            depth, node = depth + 1, node[1]
        return depth

    @property
    def num_levels(self) -> int:
        return self.num_stages + 1

    def layouts(self) -> list[str]:
        node, found = self.arch_layout, []
        while isinstance(node, list) and len(node) == 3:
            found += [node[0], node[2]]
            node = node[1]
        if not isinstance(node, list) or len(node) != 1 or not isinstance(node[0], str):
            raise DnahnetError(f"config {self.name}: arch_layout malformed near {node!r}")
        return found + [node[0]]

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_positive_number(value) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool)
        and math.isfinite(value) and value > 0
    )


def _require_list(where: str, key: str, values, check, what: str) -> None:
    if not isinstance(values, list) or not all(check(v) for v in values):
        raise DnahnetError(f"{where}: {key} must be a list of {what}, got {values!r}")


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
    if not isinstance(data, dict):
        raise DnahnetError(
            f"{where}: expected a JSON object of model settings, got a {type(data).__name__}"
        )
    known = {f.name: f for f in fields(ModelConfig)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise DnahnetError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(known)})")
    missing = [
        name for name, f in known.items()
        if f.default is MISSING and f.default_factory is MISSING and name not in data
    ]
    if missing:
        raise DnahnetError(f"{where}: missing setting {missing[0]!r}")
    ssm = data.get("ssm")
    if isinstance(ssm, dict):
        extra = sorted(set(ssm) - {f.name for f in fields(SSMConfig)})
        if extra:
            raise DnahnetError(f"{where}: unknown setting 'ssm.{extra[0]}'")
    try:
        return ModelConfig(**data)
    except TypeError as error:
        raise DnahnetError(f"{where}: {error}") from None
    except DnahnetError as error:
        raise DnahnetError(f"{where}: {error}") from None


def load_config(name_or_path: str | Path) -> ModelConfig:
    """A preset name (see `list_presets`), a config.json, or a model directory."""
    path = Path(name_or_path)
    if path.is_dir():
        path = path / CONFIG
    if path.suffix == ".json" and path.exists():
        source = path
    elif str(name_or_path) in list_presets():
        source = _preset_dir() / f"{name_or_path}.json"
    else:
        raise DnahnetError(
            f"unknown model config {str(name_or_path)!r}: not a config .json, a model "
            f"directory or a preset "
            f"({', '.join(list_presets())})"
        )
    try:
        data = json.loads(source.read_text(encoding=TEXT_ENCODING))
    # ValueError: bad JSON, bad UTF-8, an integer of thousands of digits; RecursionError:
    # thousands of nested brackets
    except (ValueError, RecursionError) as error:
        raise DnahnetError(f"{source}: not valid JSON ({error})") from None
    if isinstance(data, dict):
        data = data.get("model", data)  # a run's config.json nests the model config
    return config_from_dict(data, where=str(source))
