"""The one trainer's per-step overhead on ResNet-50: ``fit`` (classification task) against a plain loop.

Same process, same batches of uint8 images already on the GPU, alternating runs so clock drift hits both:

    python benchmarks/trainer_overhead.py --repeats 3 --out results.jsonl

Needs torch, torchvision, numpy (and pydantic for the TrainSettings the trainer takes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.train_throughput import (
    MODELS,
    device_info,
    reference_loop,
    synthetic_images,  # noqa: E402
    trainer_throughput,
)
from components.training.device_data import ImageTensorDataset  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out")
    args = p.parse_args(argv)
    device = torch.device("cuda")
    info = device_info(device)
    build, side, batch = MODELS["resnet50"]
    images, labels = synthetic_images(batch * 20, side, 1000)
    rows = []
    for compiled in (False, True):
        for repeat in range(args.repeats):
            for loop in ("reference", "trainer"):
                torch.manual_seed(0)
                img_s = (
                    reference_loop(build, side, batch, device, 30, 10, compiled)
                    if loop == "reference"
                    else trainer_throughput(build, ImageTensorDataset(images, labels), side, batch, device, 3, compiled)
                )
                row = {
                    "loop": loop,
                    "mode": "compiled" if compiled else "eager",
                    "repeat": repeat,
                    "img_s": img_s,
                    **{k: str(v) for k, v in info.items()},
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
                torch.cuda.empty_cache()
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
