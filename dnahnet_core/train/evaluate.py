"""Bits per nucleotide (and per-stage compression) of a model on a dataset split.

``evaluate_split`` is the metric of training's validation; ``evaluate_dataset`` is
``dnahnet evaluate``: the same on a prepared dataset directory, with a progress bar.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from dnahnet_core.errors import DnahnetError
from dnahnet_core.model_source import ModelSource, ready_model
from dnahnet_core.progress import counter
from dnahnet_core.train.data import collate
from dnahnet_core.train.distributed import World
from dnahnet_core.train.metrics import LN2, stage_fields, stage_stats, token_nll
from dnahnet_core.train.precision import autocast, resolve_precision


@torch.no_grad()
def evaluate_split(
    model: nn.Module,
    dataset,
    *,
    batch_size: int = 8,
    device: torch.device | None = None,
    precision: str = "fp32",
    max_fragments: int | None = None,
    world: World | None = None,
    on_batch=None,
) -> dict:
    """NLL over every valid position of the first ``max_fragments`` fragments (all by default).

    Under DDP each rank scores a strided share and the sums are all-reduced, so every
    rank returns the same numbers. Stage statistics are weighted by nucleotides.
    """
    device = device or next(model.parameters()).device
    rank, world_size = (world.rank, world.world_size) if world else (0, 1)
    total = len(dataset) if max_fragments is None else min(len(dataset), max_fragments)
    indices = list(range(rank, total, world_size))
    was_training = model.training
    model.eval()
    nll = torch.zeros((), dtype=torch.float64, device=device)
    count = torch.zeros((), dtype=torch.float64, device=device)
    stages = None
    try:
        for start in range(0, len(indices), batch_size):
            batch = [dataset[i] for i in indices[start : start + batch_size]]
            tokens, mask = collate(batch)
            tokens, mask = tokens.to(device), mask.to(device)
            with autocast(device, precision):
                out = model(tokens, mask)
            n = mask.sum().double()
            nll += token_nll(out.logits, tokens, mask).double()
            count += n
            weighted = stage_stats(out, device).double() * n
            stages = weighted if stages is None else stages + weighted
            if on_batch is not None:
                on_batch(len(batch))
    finally:
        model.train(was_training)
    if stages is None:
        # no fragment here (more ranks than fragments); shapes must still match across ranks
        stages = _stage_shape(model, device)
    packed = torch.cat([nll.view(1), count.view(1), stages.reshape(-1)])
    if world is not None:
        world.all_reduce_sum(packed)
    nll_total, nucleotides = packed[0].item(), packed[1].item()
    per_nt = nll_total / max(1.0, nucleotides)
    result = {
        "bpb": per_nt / LN2,
        "nll": per_nt,
        "nucleotides": int(nucleotides),
        "fragments": total,
    }
    if packed.numel() > 2:
        result.update(stage_fields(packed[2:].view(-1, 3) / max(1.0, nucleotides)))
    return result


def _stage_shape(model: nn.Module, device: torch.device) -> torch.Tensor:
    tokens = torch.zeros(1, 8, dtype=torch.long, device=device)
    with torch.no_grad():
        out = model(tokens, torch.ones_like(tokens, dtype=torch.bool))
    return torch.zeros_like(stage_stats(out, device), dtype=torch.float64)


def evaluate_dataset(
    model: ModelSource | nn.Module,
    data: str | os.PathLike,
    split: str = "test",
    *,
    batch_size: int = 8,
    device="auto",
    precision: str = "auto",
    max_fragments: int | None = None,
) -> dict:
    """``evaluate_split`` on a split of a prepared dataset (``dnahnet prepare``), with the
    uniform and Markov bits per nucleotide of the same fragments under ``baselines``
    (``data.markov.dataset_baselines``); when there are none, ``baselines_note`` says why."""
    from dnahnet_core.data.dataset import FragmentDataset, check_data_option
    from dnahnet_core.data.markov import dataset_baselines

    data = check_data_option(data)
    dataset = FragmentDataset(data, split)
    if len(dataset) == 0:
        raise DnahnetError(f"--data {data}: the {split} split is empty")
    network, device = ready_model(model, device)
    chosen = resolve_precision(precision, device)
    total = len(dataset) if max_fragments is None else min(max_fragments, len(dataset))
    with counter("fragments", f"evaluating {split}", total) as advance:
        result = evaluate_split(network, dataset, batch_size=batch_size, device=device,
                                precision=chosen, max_fragments=max_fragments, on_batch=advance)
    train = FragmentDataset(data, "train")
    result["baselines"] = dataset_baselines(train, dataset, total)
    if not result["baselines"]:
        result["baselines_note"] = no_baselines_reason(train, dataset, total, split)
    return result


def no_baselines_reason(train, scored, fragments: int, split: str) -> str:
    """Why ``dataset_baselines`` gave nothing: an empty training split to count the Markov
    models on, or no A/C/G/T position among the first ``fragments`` scored fragments."""
    if len(train) == 0:
        return "the training split is empty, so there is nothing to count them on"
    shown = min(fragments, len(scored))
    return (f"the {shown} scored {split} fragment(s) hold no A, C, G or T (all N), "
            "the only positions the baselines score")
