"""Pre-norm residual layers and the isotropic stack built from a layout string."""

from __future__ import annotations

import math

import torch
from torch import nn

from dnahnet_core.model.attention import Attention, SwiGLU
from dnahnet_core.model.config import SSMConfig, parse_layout
from dnahnet_core.model.norms import RMSNorm
from dnahnet_core.model.ssm import Mamba2

# On a CPU a long sequence goes through a Mamba2 layer in blocks of about this many
# positions, the state carried from block to block (the same arithmetic: blocks end on
# scan-chunk boundaries): a block's activations stay in the core's cache instead of
# streaming through memory, 1.2-1.8x faster (docs/benchmarks.md).
CPU_BLOCK_LENGTH = 1024


class MambaLayer(nn.Module):
    residual_branches = 1

    def __init__(self, d_model: int, ssm: SSMConfig):
        super().__init__()
        self.norm = RMSNorm(d_model)
        self.mixer = Mamba2(d_model, ssm)
        self.block_length = max(CPU_BLOCK_LENGTH // ssm.chunk_size, 1) * ssm.chunk_size
        self.compiled_block = None  # set by compile_cpu_blocks

    def forward(self, x, valid, state=None, return_state=False):
        length = x.shape[1]
        if x.device.type != "cpu" or length <= self.block_length:
            return self._forward(x, valid, state, return_state)
        compiled = self.compiled_block if torch.is_grad_enabled() else None  # training only
        if state is None and compiled is not None:
            # the same as none, and one graph for every block (later states carry gradients)
            state = self.mixer.zero_state(x, requires_grad=True)
        outputs = []
        for start in range(0, length, self.block_length):
            block = slice(start, start + self.block_length)
            x_block, valid_block, step = x[:, block], valid[:, block], self._forward
            if compiled is not None and start + self.block_length <= length:
                # fresh strides: a slice's would change with the input length (a recompile)
                x_block, valid_block = (t.clone(memory_format=torch.contiguous_format)
                                        for t in (x_block, valid_block))
                step = compiled
            out, state = step(x_block, valid_block, state, return_state=True)
            outputs.append(out)
        return torch.cat(outputs, dim=1), state if return_state else None

    def compile_cpu_blocks(self) -> None:
        """Run full-length CPU blocks through torch.compile: their shapes repeat (one graph
        per width), where the whole model's inner lengths change every call."""
        self.compiled_block = torch.compile(self._forward, dynamic=False)

    def _forward(self, x, valid, state, return_state):
        out, state = self.mixer(self.norm(x), valid, state, return_state)
        return x + out, state


class AttentionLayer(nn.Module):
    residual_branches = 2

    def __init__(self, d_model, num_heads, d_intermediate, window, rope_base):
        super().__init__()
        self.norm = RMSNorm(d_model)
        self.mixer = Attention(d_model, num_heads, window, rope_base)
        self.mlp_norm = RMSNorm(d_model)
        self.mlp = SwiGLU(d_model, d_intermediate)

    def forward(self, x, valid, state=None, return_state=False):
        out, state = self.mixer(self.norm(x), valid, state, return_state)
        x = x + out
        return x + self.mlp(self.mlp_norm(x)), state


class Isotropic(nn.Module):
    """A stack of layers at one resolution, ending in RMSNorm."""

    def __init__(self, layout, d_model, d_intermediate, num_heads, window, ssm, rope_base):
        super().__init__()
        self.layout = layout
        layers = []
        for code in parse_layout(layout):
            if code == "m":
                layers.append(MambaLayer(d_model, ssm))
            else:
                layers.append(AttentionLayer(d_model, num_heads, d_intermediate, window, rope_base))
        self.layers = nn.ModuleList(layers)
        self.final_norm = RMSNorm(d_model)
        self._init_out_projections()

    def _init_out_projections(self) -> None:
        """Out projections start at std 0.02 / sqrt(number of residual branches)."""
        branches = sum(layer.residual_branches for layer in self.layers)
        for name, param in self.named_parameters():
            if name.endswith("out_proj.weight"):
                nn.init.normal_(param, std=0.02 / math.sqrt(max(branches, 1)))

    def forward(self, x: torch.Tensor, valid: torch.Tensor, state: list | None = None,
                return_state: bool = False):
        """(output, per-layer states or None, routing stats: none at this level)."""
        new_state = []
        for i, layer in enumerate(self.layers):
            x, layer_state = layer(x, valid, None if state is None else state[i], return_state)
            new_state.append(layer_state)
        return self.final_norm(x), new_state if return_state else None, []
