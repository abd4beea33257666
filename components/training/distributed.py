"""torchrun support: one process per GPU, found from the environment torchrun sets; nothing when run plainly.

    # one process (CPU or one GPU):                python my_train.py
    # N GPUs on one machine:                       torchrun --standalone --nproc_per_node=N my_train.py
    ctx = init_from_env()          # RANK, LOCAL_RANK, WORLD_SIZE from torchrun; rank 0 of 1 otherwise
    fit(model, train_set, val_set, config, ctx.device)
    cleanup()

The process group uses NCCL on GPUs and gloo on CPUs (gloo is what the CPU tests use). ``fit`` asks
``torch.distributed`` itself whether it runs distributed, so the same call serves 1 or N processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_from_env(device: str = "auto") -> DistContext:
    """Join the process group torchrun describes (or do nothing outside torchrun) and pick this rank's device."""
    if not launched_by_torchrun():
        from components.training.loop import resolve_device

        return DistContext(0, 0, 1, resolve_device(device))
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
        # device_id binds this process to its GPU up front, so NCCL need not guess it at the first collective.
        dist.init_process_group(backend="nccl", device_id=dev)
    else:
        dev = torch.device("cpu")
        dist.init_process_group(backend="gloo")
    return DistContext(rank, local_rank, world_size, dev)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the current process group; (0, 1) when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return rank_and_world()[0] == 0


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes in place (a no-op in one process) and return it."""
    if rank_and_world()[1] > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_object(obj) -> list:
    """Every process's ``obj``, in rank order; ``[obj]`` in one process."""
    world = rank_and_world()[1]
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if rank_and_world()[1] > 1:
        dist.barrier()
