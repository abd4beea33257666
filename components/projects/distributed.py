"""A project's training on N processes under torchrun: what the train stage does when ``train.gpus`` is above 1.

    the flow's train task                          torchrun --nproc_per_node N -m components.projects.distributed JOB
      JOB/job.pt: project, settings, data   ->     every rank: the project's own train(), one process group, so
                                                   training.loop.fit runs DistributedDataParallel (NCCL on GPUs,
                                                   gloo on a CPU), each rank on 1/N of every global batch
      JOB/trained.pt                        <-     rank 0: each epoch logged into the flow's MLflow run, the result

The project's code is the same in both cases: ``fit`` asks torch.distributed whether it runs distributed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from components.errors import DlfolioError


class DistributedTrainingError(DlfolioError, RuntimeError):
    """torchrun's processes failed; their own output (above it) says why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(project, data, settings, *, processes: int, checkpoint_dir: Path, tracking_uri: str, run_id: str):
    """Train ``project`` on ``data`` in ``processes`` torchrun processes; returns rank 0's ``Trained``."""
    import torch

    job = checkpoint_dir / "torchrun"
    shutil.rmtree(job, ignore_errors=True)
    job.mkdir(parents=True)
    torch.save(
        {
            "project": project.name,
            "settings": settings,
            "data": data,
            "checkpoint_dir": str(checkpoint_dir),
            "tracking_uri": tracking_uri,
            "run_id": run_id,
        },
        job / "job.pt",
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        f"--nproc_per_node={processes}",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "-m",
        "components.projects.distributed",
        str(job),
    ]
    try:
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            raise DistributedTrainingError(
                f"{project.name}: training on {processes} torchrun processes failed (exit {done.returncode}); "
                "their output above says why"
            )
        return torch.load(job / "trained.pt", weights_only=False)
    finally:
        shutil.rmtree(job, ignore_errors=True)


def epoch_logger(tracking_uri: str, run_id: str, rank: int):
    """Rank 0's on_epoch: the epoch's numbers into the flow's MLflow run (as the flow's own on_epoch does) and a
    line on stdout; the other ranks' numbers are the same all-reduced ones, so they log nothing."""
    if rank != 0:
        return None
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)

    def on_epoch(stats: dict) -> None:
        epoch = int(stats.pop("epoch"))
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, epoch) for k, v in stats.items()])
        print(f"epoch {epoch}: " + ", ".join(f"{k}={v:.4g}" for k, v in stats.items()), flush=True)

    return on_epoch


def main(job_dir: Path) -> None:
    import torch

    from components.projects import get_project
    from components.training import distributed

    job = torch.load(job_dir / "job.pt", weights_only=False)
    settings = job["settings"]
    ctx = distributed.init_from_env(settings.device)
    if ctx.device.type == "cpu":  # N processes share the cores instead of each taking them all
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // ctx.world_size))
    try:
        trained = get_project(job["project"]).train(
            job["data"],
            settings,
            on_epoch=epoch_logger(job["tracking_uri"], job["run_id"], ctx.rank),
            checkpoint_dir=Path(job["checkpoint_dir"]),
        )
        if ctx.is_main:
            torch.save(trained, job_dir / "trained.pt")
    finally:
        distributed.cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
