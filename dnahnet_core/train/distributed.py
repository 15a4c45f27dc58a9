"""Process-group set-up for ``torchrun`` (DDP): NCCL on GPUs, gloo on CPU.

A plain ``dnahnet train`` is a world of one and never touches ``torch.distributed``.
Under ``torchrun`` the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT) says who we are; each process drives the GPU of its LOCAL_RANK.
"""

from __future__ import annotations

import datetime
import gc
import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from dnahnet_core.device import resolve_device
from dnahnet_core.errors import DnahnetError


@dataclass
class World:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def gather_objects(self, value) -> list:
        """Every rank's ``value`` (a small picklable object of our own making), on all ranks."""
        if not self.distributed:
            return [value]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def setup(device_name: str = "auto") -> World:
    """Join the process group when launched by torchrun; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return World(0, 1, 0, resolve_device(device_name))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DnahnetError(
                f"LOCAL_RANK {local_rank}: only {torch.cuda.device_count()} GPU(s) on this node"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    return World(rank, world_size, local_rank, device)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        # A gloo worker thread drops the last reference to a finished collective's tensors
        # after the caller's wait() returns, and that needs the GIL. If the group is then
        # destroyed (joining that thread) while this thread holds the GIL, both wait
        # forever; sleeping releases the GIL so the workers can finish first.
        gc.collect()  # DDP's reducer (reference cycles) goes while the group still exists
        time.sleep(0.05)
        dist.destroy_process_group()
