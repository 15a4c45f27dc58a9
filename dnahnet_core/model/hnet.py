"""One H-Net stage: encoder -> routing -> chunk -> inner -> dechunk -> residual -> decoder.

The inner network is another stage or, at the innermost level, an isotropic stack with
global attention. Widths may grow inwards: chunks are padded with a learned vector on
the way in and truncated on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from dnahnet_core.model.blocks import Isotropic
from dnahnet_core.model.chunking import Router, RouterState, chunk, dechunk, straight_through
from dnahnet_core.model.config import ModelConfig


@dataclass
class RawStageStats:
    """Routing outcome of one stage, in that stage's own coordinates."""

    p: torch.Tensor  # [b, t] boundary probability
    boundary: torch.Tensor  # [b, t] bool
    valid: torch.Tensor  # [b, t] bool
    target_ratio: float


class StageState(NamedTuple):
    encoder: list
    router: RouterState
    inner: StageState | list  # the inner stage's state, or the main stack's layer states
    dechunk: torch.Tensor  # [b, d] the EMA's last value
    decoder: list


class RouteState(NamedTuple):
    """What ``HNetStage.route`` needs to continue: encoder and router of this stage and
    of the inner stages (bounded: windowed attention and SSM states only)."""

    encoder: list
    router: RouterState
    inner: RouteState | None


def _field(state: NamedTuple | None, name: str):
    """One part of a stage's state, None for a fresh sequence."""
    return None if state is None else getattr(state, name)


def isotropic(cfg: ModelConfig, layout: str, level: int) -> Isotropic:
    innermost = level == cfg.num_levels - 1
    return Isotropic(
        layout,
        cfg.d_model[level],
        cfg.d_intermediate[level],
        cfg.num_heads[level],
        None if innermost else cfg.attn_window,
        cfg.ssm,
        cfg.rope_base,
    )


class HNetStage(nn.Module):
    def __init__(self, cfg: ModelConfig, node: list, level: int = 0):
        super().__init__()
        d, d_inner = cfg.d_model[level], cfg.d_model[level + 1]
        self.target_ratio = float(cfg.target_ratios[level])
        self.encoder = isotropic(cfg, node[0], level)
        inner = node[1]
        self.inner = (
            HNetStage(cfg, inner, level + 1)
            if len(inner) == 3
            else isotropic(cfg, inner[0], level + 1)
        )
        self.decoder = isotropic(cfg, node[2], level)
        self.router = Router(d)
        self.residual_proj = nn.Linear(d, d)
        nn.init.zeros_(self.residual_proj.weight)
        nn.init.zeros_(self.residual_proj.bias)
        self.pad_dimension = nn.Parameter(torch.zeros(d_inner - d)) if d_inner > d else None
        self.d = d

    def forward(self, x: torch.Tensor, valid: torch.Tensor, state: StageState | None = None,
                return_state: bool = False, chunk_widths: tuple[int, ...] = ()):
        """(output [b, t, d], new state or None, [RawStageStats of this and inner stages]).

        ``chunk_widths``: the inner sequence lengths of this and the inner stages, fixed
        (``chunk``'s ``width``), for a forward without host syncs; () sizes them by their
        chunk counts."""
        h, enc_state, p, route_state, boundary = self._encode_and_route(
            x, valid, _field(state, "encoder"), _field(state, "router"), return_state
        )
        width = chunk_widths[0] if chunk_widths else None
        chunks, chunk_valid, order = self._chunks(h, boundary, width)
        inner_args = (chunks, chunk_valid, _field(state, "inner"), return_state)
        if isinstance(self.inner, HNetStage):
            inner_out, inner_state, inner_stats = self.inner(*inner_args, chunk_widths[1:])
        else:
            inner_out, inner_state, inner_stats = self.inner(*inner_args)
        inner_out = inner_out[..., : self.d]

        chunk_p = p.gather(1, order)
        out, last = dechunk(inner_out, chunk_p, chunk_valid, boundary, _field(state, "dechunk"))
        selected = torch.where(boundary, p, 1 - p)
        with torch.autocast(device_type=x.device.type, enabled=False):
            residual = self.residual_proj(h.float())
        out = (out.float() * straight_through(selected)[..., None] + residual).to(x.dtype)
        out, dec_state = self.decoder(out, valid, _field(state, "decoder"), return_state)[:2]

        new_state = None
        if return_state:
            new_state = StageState(enc_state, route_state, inner_state, last, dec_state)
        stats = [RawStageStats(p, boundary, valid, self.target_ratio)] + inner_stats
        return out, new_state, stats

    def route(self, x: torch.Tensor, valid: torch.Tensor, state: RouteState | None = None,
              return_state: bool = False, depth: int | None = None,
              ) -> tuple[list[RawStageStats], RouteState | None]:
        """The boundaries of this and the inner stages alone: encoders and routers, none of
        the inner network or the decoders (the same values as ``forward``'s stats), and
        with ``return_state`` the state that continues them. ``depth``: how many stages,
        this one included (None: all)."""
        h, enc_state, p, route_state, boundary = self._encode_and_route(
            x, valid, _field(state, "encoder"), _field(state, "router"), return_state
        )
        stats = [RawStageStats(p, boundary, valid, self.target_ratio)]
        inner_state = None
        if isinstance(self.inner, HNetStage) and (depth is None or depth > 1):
            chunks, chunk_valid, _ = self._chunks(h, boundary)
            inner_stats, inner_state = self.inner.route(
                chunks, chunk_valid, _field(state, "inner"), return_state,
                None if depth is None else depth - 1,
            )
            stats += inner_stats
        new_state = RouteState(enc_state, route_state, inner_state) if return_state else None
        return stats, new_state

    def _encode_and_route(self, x, valid, enc_state=None, route_state=None,
                          return_state=False):
        """(encoder output h, its state, boundary probabilities p, the router's state,
        boundaries): the part of the stage that decides where chunks start."""
        h, enc_state = self.encoder(x, valid, enc_state, return_state)[:2]
        p, route_state = self.router(h, valid, route_state, return_state)
        return h, enc_state, p, route_state, (p >= 0.5) & valid

    def _chunks(self, h: torch.Tensor, boundary: torch.Tensor, width: int | None = None):
        """The selected positions, left-aligned and widened to the inner width."""
        chunks, chunk_valid, order = chunk(h, boundary, width)
        if self.pad_dimension is not None:
            pad = self.pad_dimension.to(chunks.dtype).expand(*chunks.shape[:2], -1)
            chunks = torch.cat([chunks, pad], dim=-1)
        return chunks, chunk_valid, order


def walk_levels(backbone: nn.Module):
    """(level, module) from the outermost stage (level 0) to the innermost stack."""
    node, level = backbone, 0
    while isinstance(node, HNetStage):
        yield level, node
        node, level = node.inner, level + 1
    yield level, node
