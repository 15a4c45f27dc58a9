"""The language model: embedding -> H-Net (or an isotropic baseline) -> head over {A,C,G,T,N}.

A BOS token is prepended inside, so every nucleotide is scored: logits[:, t] predict x_t
from x_<t. Incremental inference uses the same forward: `model(prefix, return_state=True)`
then `model(suffix, state=...)` equals the forward pass over prefix + suffix; the state
also carries the logits for the next, not yet seen, nucleotide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dnahnet_core.model.chunking import ratio_loss
from dnahnet_core.model.config import ModelConfig
from dnahnet_core.model.hnet import HNetStage, RouteState, isotropic, walk_levels


def map_tensors(tree, fn):
    """Apply fn to every tensor of a state tree (NamedTuples, lists, None leaves)."""
    if isinstance(tree, torch.Tensor):
        return fn(tree)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(map_tensors(value, fn) for value in tree))
    if isinstance(tree, list):
        return [map_tensors(value, fn) for value in tree]
    return tree


class ModelState(NamedTuple):
    """Everything needed to continue a sequence: caches of every layer, batch-first."""

    backbone: object  # StageState, or the layer states of an isotropic baseline
    next_logits: torch.Tensor  # [b, vocab]: the logits of the nucleotide that would come next

    def select(self, index) -> ModelState:
        index = torch.as_tensor(index, device=self.next_logits.device)
        return map_tensors(self, lambda t: t.index_select(0, index))

    def expand(self, n: int) -> ModelState:
        """Repeat each batch element n times (element i -> rows i*n ... i*n + n - 1)."""
        return map_tensors(self, lambda t: t.repeat_interleave(n, dim=0))


@dataclass
class StageStats:
    """Routing of one stage in nucleotide coordinates."""

    boundary_prob: (
        torch.Tensor
    )  # [b, L]; for inner stages defined where the outer stage has a boundary
    boundary_mask: torch.Tensor  # [b, L] bool; a chunk of this stage starts here
    selected_fraction: torch.Tensor  # F, scalar (over valid positions of this stage)
    mean_prob: torch.Tensor  # G, scalar
    compression: torch.Tensor  # L / L' of this stage (positions in per chunk out), scalar
    target_ratio: float
    chunk_count: torch.Tensor  # [b] chunks of each row: the inner sequence's valid length


@dataclass
class LMOutput:
    logits: torch.Tensor  # [b, L, vocab]
    ratio_loss: torch.Tensor  # scalar, sum over stages (0 for baselines)
    stages: list[StageStats]
    state: ModelState | None = None


class DnaLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.bos = cfg.vocab_size
        d = cfg.d_model[0]
        self.embedding = nn.Embedding(cfg.vocab_size + 1, d)
        nn.init.normal_(self.embedding.weight, std=0.02)
        if cfg.num_stages:
            self.backbone = HNetStage(cfg, cfg.arch_layout)
        else:
            self.backbone = isotropic(cfg, cfg.arch_layout[0], 0)
        self.head = nn.Linear(d, cfg.vocab_size, bias=False)
        nn.init.normal_(self.head.weight, std=0.02)

    def forward(self, tokens, mask=None, state: ModelState | None = None, return_state=False,
                chunk_widths: tuple[int, ...] = ()):
        """``chunk_widths``: each stage's inner length fixed, outer first (``HNetStage``),
        so that the forward has static shapes and no host sync (``model.graphs``); a row
        whose ``stages[i].chunk_count`` exceeds ``chunk_widths[i]`` lost chunks and its
        outputs are wrong. () (the default): sized by the chunk counts, always right."""
        length = tokens.shape[1]
        valid = torch.ones_like(tokens, dtype=torch.bool) if mask is None else mask.bool()
        if state is None:
            tokens, valid = self._with_bos(tokens, valid)
        h = self.embedding(tokens.long())
        backbone_args = (h, valid, None if state is None else state.backbone, return_state)
        if chunk_widths:
            if len(chunk_widths) > self.config.num_stages:
                raise ValueError(f"{len(chunk_widths)} chunk widths for "
                                 f"{self.config.num_stages} stages")
            backbone_args += (tuple(chunk_widths),)
        h, backbone_state, raw_stats = self.backbone(*backbone_args)
        all_logits = self.head(h).float()
        if state is None:
            logits, next_logits = all_logits[:, :length], all_logits[:, length]
        else:
            logits = torch.cat([state.next_logits[:, None], all_logits[:, :-1]], dim=1)
            next_logits = all_logits[:, -1]
        stages, total_ratio_loss = self._stage_stats(raw_stats, drop_first=state is None)
        new_state = ModelState(backbone_state, next_logits.detach()) if return_state else None
        return LMOutput(logits, total_ratio_loss, stages, new_state)

    def boundaries(self, tokens, mask=None, state: RouteState | None = None,
                   return_state: bool = False, depth: int | None = None,
                   ) -> tuple[list[StageStats], RouteState | None]:
        """The per-stage boundaries of ``forward(tokens, mask).stages``, computed with the
        encoders and routers only (about half the work of a forward pass), and with
        ``return_state`` the state that continues them: a sequence run in pieces with the
        state carried gets the boundaries of one pass, in memory bounded by the piece
        (the encoders have windowed attention and SSMs only). ``depth``: only the outer
        ``depth`` stages (the inner encoders are skipped; None: all)."""
        if not self.config.num_stages:
            return [], None
        valid = torch.ones_like(tokens, dtype=torch.bool) if mask is None else mask.bool()
        if state is None:
            tokens, valid = self._with_bos(tokens, valid)
        raw_stats, new_state = self.backbone.route(
            self.embedding(tokens.long()), valid, state, return_state, depth
        )
        return self._stage_stats(raw_stats, drop_first=state is None)[0], new_state

    def _with_bos(self, tokens, valid):
        """A fresh sequence starts with the BOS token (always valid)."""
        b = tokens.shape[0]
        tokens = torch.cat([tokens.new_full((b, 1), self.bos), tokens], dim=1)
        return tokens, torch.cat([valid.new_ones(b, 1), valid], dim=1)

    def _stage_stats(self, raw_stats, drop_first: bool):
        """Compose each stage's routing onto nucleotides; sum the ratio losses."""
        stages, total = [], torch.zeros((), device=self.head.weight.device)
        position_of = None  # per outer position: index into the current stage's sequence
        outer_mask = None
        for raw in raw_stats:
            loss, F_, G = ratio_loss(raw.p, raw.boundary, raw.valid, raw.target_ratio)
            total = total + loss
            if position_of is None:
                prob, mask = raw.p, raw.boundary
            else:
                # clamped at both ends: with chunk_widths a row may have lost chunks
                inner = position_of.clamp(0, raw.p.shape[1] - 1)
                prob = torch.where(outer_mask, raw.p.gather(1, inner), 0.0)
                mask = outer_mask & raw.boundary.gather(1, inner)
            # a tensor, not a float: int() here would make the host wait for the GPU
            # twice a stage (docs/benchmarks.md, "Why dnaHNet loses at 8-32 kb")
            chunk_count = (raw.boundary & raw.valid).sum(1)
            compression = raw.valid.sum() / chunk_count.sum().clamp(min=1)
            stages.append(
                StageStats(
                    prob[:, 1:] if drop_first else prob,
                    mask[:, 1:] if drop_first else mask,
                    F_.detach(),
                    G.detach(),
                    compression.detach().float(),
                    raw.target_ratio,
                    chunk_count,
                )
            )
            # outer position -> index of its chunk in the next stage's sequence
            position_of = torch.cumsum(mask.long(), dim=1) - 1
            outer_mask = mask
        return stages, total

    @torch.no_grad()
    def log_probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """[b, L] log P(x_t | x_<t) (N is a token like any other)."""
        logits = self(tokens).logits
        return F.log_softmax(logits, dim=-1).gather(-1, tokens.long()[..., None])[..., 0]

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """AdamW groups: per-level lr multiplier, no weight decay on 1-D tensors (norms, biases)."""
        level_of: dict[int, int] = {}  # innermost first: a stage's own parameters are the rest
        for level, node in reversed(list(walk_levels(self.backbone))):
            for param in node.parameters():
                level_of.setdefault(id(param), level)
        groups: dict[tuple[int, bool], list] = {}
        for param in self.parameters():
            if not param.requires_grad:
                continue
            level = level_of.get(id(param), 0)  # embedding and head: the outer level
            groups.setdefault((level, param.ndim >= 2), []).append(param)
        result = []
        for (level, decay), params in sorted(groups.items()):
            mult = self.config.lr_multipliers[level]
            result.append(
                {
                    "params": params,
                    "lr": lr * mult,
                    "lr_mult": mult,
                    "weight_decay": weight_decay if decay else 0.0,
                    "level": level,
                }
            )
        return result
