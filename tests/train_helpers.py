"""Small stand-ins for training tests: a causal toy LM with a fake routing stage and an
in-memory fragment dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class ToyStage:
    compression: torch.Tensor
    mean_prob: torch.Tensor
    selected_fraction: torch.Tensor


@dataclass
class ToyOutput:
    logits: torch.Tensor
    ratio_loss: torch.Tensor
    stages: list


class ToyLM(nn.Module):
    """Embedding -> causal conv -> head, plus a boundary predictor with the H-Net ratio loss."""

    def __init__(self, dim: int = 16, target: float = 3.0, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(6, dim)  # 5 tokens + BOS
        self.conv = nn.Conv1d(dim, dim, kernel_size=4)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 5)
        self.router = nn.Linear(dim, 1)
        self.target = target

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> ToyOutput:
        if mask is None:
            mask = torch.ones_like(tokens, dtype=torch.bool)
        bos = torch.full_like(tokens[:, :1], 5)
        x = self.embed(torch.cat([bos, tokens[:, :-1]], dim=1)).transpose(1, 2)
        h = self.conv(nn.functional.pad(x, (3, 0))).transpose(1, 2)
        h = self.norm(torch.relu(h))
        prob = torch.sigmoid(self.router(h)).squeeze(-1)
        m = mask.float()
        selected = ((prob >= 0.5).float() * m).sum() / m.sum()
        mean_prob = (prob * m).sum() / m.sum()
        r = self.target
        ratio = r / (r - 1) * ((r - 1) * selected * mean_prob + (1 - selected) * (1 - mean_prob))
        stage = ToyStage(1.0 / selected.clamp_min(1e-6).detach(), mean_prob.detach(),
                         selected.detach())
        return ToyOutput(self.head(h), ratio, [stage])


class ListDataset:
    """Random fragments with some structure (a repeated motif), some shorter than full length."""

    def __init__(self, n: int, length: int = 64, seed: int = 0) -> None:
        motif = np.random.default_rng(12345).integers(0, 4, size=7)  # shared by all splits
        rng = np.random.default_rng(seed)
        self.fragment_length = length
        self.items = []
        for i in range(n):
            size = length if i % 3 else length // 2 + i % 5
            base = np.resize(motif, size)
            noise = rng.random(size) < 0.2
            base[noise] = rng.integers(0, 4, size=int(noise.sum()))
            self.items.append(base.astype(np.uint8))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.items[i]
