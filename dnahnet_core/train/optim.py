"""AdamW with per-stage learning-rate multipliers and a warm-up + cosine schedule.

Models that know their structure expose ``model.param_groups(lr, weight_decay)``
(dnaHNet applies its per-stage multipliers there and keeps ``lr_mult`` in each
group). Any other module gets two groups: decayed matrices and undecayed
norms/biases/1-d parameters. The schedule sets ``group["lr"] = base_lr *
lr_mult * factor(step)``, so the multipliers survive every update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


def default_param_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only; norms, biases and other 1-d tensors are not decayed."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias"):
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay, "lr": lr, "lr_mult": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr": lr, "lr_mult": 1.0},
    ]
    return [group for group in groups if group["params"]]


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
) -> torch.optim.AdamW:
    """AdamW over the model's parameter groups (its own ``param_groups`` when it has one)."""
    if hasattr(model, "param_groups"):
        groups = model.param_groups(lr, weight_decay)
    else:
        groups = default_param_groups(model, lr, weight_decay)
    for group in groups:
        group.setdefault("lr_mult", group.get("lr", lr) / lr if lr else 1.0)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warm-up to ``base_lr`` over ``warmup`` steps, then cosine decay to
    ``min_ratio * base_lr`` at ``total`` steps (constant afterwards).

    Stateless: the learning rate is a function of the step, so resuming only
    needs the step number.
    """

    base_lr: float
    warmup: int
    total: int
    min_ratio: float = 0.1

    def factor(self, step: int) -> float:
        """Multiplier for the update made at 0-based ``step``."""
        if self.warmup > 0 and step < self.warmup:
            return (step + 1) / self.warmup
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_ratio + (1.0 - self.min_ratio) * cosine

    def lr(self, step: int) -> float:
        return self.base_lr * self.factor(step)

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every group's lr for ``step``; returns the base (multiplier 1) lr."""
        factor = self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = self.base_lr * group.get("lr_mult", 1.0) * factor
        return self.base_lr * factor


def default_warmup(total_steps: int) -> int:
    """10 % of the run, at most 2,000 steps."""
    return max(1, min(2000, total_steps // 10))
