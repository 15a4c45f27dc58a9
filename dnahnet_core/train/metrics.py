"""Loss terms, per-stage statistics and the metrics log (``metrics.jsonl``, optional TensorBoard).

Records are flat JSON objects, one per line. Training records (``"kind": "train"``):
``step`` (optimizer steps done), ``tokens`` (nucleotides trained on so far), ``loss``
(NLL + alpha * ratio loss), ``nll`` (nats per nucleotide), ``bpb`` (bits per nucleotide),
``ratio_loss`` (sum over stages, unweighted), ``lr`` (base learning rate, multiplier 1),
``grad_norm`` (before clipping), ``nt_per_s`` (training throughput, all ranks),
and per stage ``s`` (outer = 0): ``compression_s`` (L / L'),
``mean_prob_s`` (mean boundary probability G), ``selected_s`` (selected fraction F).
Values are means over the steps since the previous record.
Validation records (``"kind": "val"``): ``step``, ``tokens``, ``bpb``, ``nll``,
``nucleotides`` and the same per-stage fields measured on the validation split.
One baseline record (``"kind": "baseline"``, step 0, written when a run starts): ``uniform``,
``markov_order_0``, ``markov_order_5`` (bits per nucleotide of those models on the same
validation fragments, counted on ``markov_fit_nucleotides`` nt of the training split) and
``n_positions`` (N positions, scored by the model only); ``data.markov``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from dnahnet_core.errors import DnahnetError
from dnahnet_core.io.atomic import atomic_open

METRICS, TENSORBOARD = "metrics.jsonl", "tensorboard"  # in the run directory

LN2 = math.log(2.0)


def token_nll(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Summed NLL (nats, fp32) over the valid (unpadded) positions."""
    losses = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), tokens.reshape(-1), reduction="none"
    )
    return (losses * mask.reshape(-1).to(losses.dtype)).sum()


def stage_stats(output, device: torch.device) -> torch.Tensor:
    """[S, 3] tensor of (compression, mean_prob, selected_fraction) per stage (outer first)."""
    stages = list(getattr(output, "stages", None) or [])
    if not stages:
        return torch.zeros(0, 3, device=device)
    rows = []
    for stage in stages:
        values = (stage.compression, stage.mean_prob, stage.selected_fraction)
        rows.append(
            torch.stack(
                [torch.as_tensor(v, dtype=torch.float32, device=device).detach() for v in values]
            )
        )
    return torch.stack(rows)


def stage_fields(stats: torch.Tensor | list) -> dict[str, float]:
    """Flatten [S, 3] stage statistics into ``compression_s`` / ``mean_prob_s`` / ``selected_s``."""
    fields = {}
    for s, (compression, mean_prob, selected) in enumerate(torch.as_tensor(stats).tolist()):
        fields[f"compression_{s}"] = compression
        fields[f"mean_prob_{s}"] = mean_prob
        fields[f"selected_{s}"] = selected
    return fields


class Interval:
    """Accumulates per-step values between two log records."""

    def __init__(self) -> None:
        self.reset(0.0)

    def reset(self, now: float) -> None:
        self.steps = 0
        self.loss = self.nll = self.ratio = self.grad_norm = 0.0
        self.nucleotides = 0.0
        self.stages: torch.Tensor | None = None
        self.started = now

    def add(self, *, loss, nll_sum, count, ratio, grad_norm, stages) -> None:
        self.steps += 1
        self.loss += loss
        self.nll += nll_sum
        self.nucleotides += count
        self.ratio += ratio
        self.grad_norm += grad_norm
        stages = stages.detach().cpu()
        self.stages = stages if self.stages is None else self.stages + stages

    def record(self, *, step: int, tokens: int, lr: float, now: float) -> dict:
        steps = max(1, self.steps)
        nll = self.nll / max(1.0, self.nucleotides)
        record = {
            "kind": "train",
            "step": step,
            "tokens": tokens,
            "loss": self.loss / steps,
            "nll": nll,
            "bpb": nll / LN2,
            "ratio_loss": self.ratio / steps,
            "lr": lr,
            "grad_norm": self.grad_norm / steps,
            "nt_per_s": self.nucleotides / max(1e-9, now - self.started),
        }
        if self.stages is not None:
            record.update(stage_fields(self.stages / steps))
        return record


class MetricsLog:
    """Appends records to ``metrics.jsonl`` (and TensorBoard when asked)."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = False) -> None:
        self.path = Path(run_dir) / METRICS
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise DnahnetError(
                    "--tensorboard: the tensorboard package is not installed "
                    "(pip install tensorboard)"
                ) from None
            self.writer = SummaryWriter(str(Path(run_dir) / TENSORBOARD))

    def write(self, record: dict) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            kind = record.get("kind", "train")
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "kind"):
                    self.writer.add_scalar(f"{kind}/{key}", value, record["step"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(run_dir: str | Path) -> list[dict]:
    """All records of a run (lines cut short by a crash are skipped)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise DnahnetError(f"{run_dir}: no {METRICS} (not a training run directory)")
    records = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise DnahnetError(f"{path}: line {number}: not text (not a metrics.jsonl)") from None
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if isinstance(record, dict):
            records.append(record)
    if not records:
        raise DnahnetError(f"{path}: no metrics records (one JSON object per line expected)")
    return records


def truncate_metrics(path: str | Path, step: int) -> None:
    """Drop logged records after ``step`` (written after the checkpoint a run resumes from)."""
    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if record.get("step", 0) <= step:
            kept.append(line)
    with atomic_open(path, "w") as handle:
        handle.write("".join(line + "\n" for line in kept))
