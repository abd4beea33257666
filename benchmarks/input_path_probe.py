"""Where the trainer's ~1% gap to the plain loop goes: the per-step input path (gather, uint8 -> float,
normalise, channels_last), timed alone, and the trainer with a fused normalisation against the plain loop.

    python benchmarks/input_path_probe.py --out rows.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.train_throughput import MODELS, device_info, reference_loop, synthetic_images, trainer_throughput  # noqa: E402
from components.training.device_data import ImageTensorDataset, Normalize  # noqa: E402
from components.training.loop import to_device  # noqa: E402

ORIGINAL = Normalize.forward


@torch.no_grad()
def fused(self, images):
    if self.output_size:
        h, w = images.shape[-2:]
        top, left = (h - self.output_size) // 2, (w - self.output_size) // 2
        images = images[..., top : top + self.output_size, left : left + self.output_size]
    return torch.addcmul(-self.mean / self.std, images, 1 / (255 * self.std))  # one kernel, uint8 promoted


def input_ms(ds, batch, device, steps=50) -> float:
    n = len(ds)
    for i in range(steps + 10):
        if i == 10:
            torch.cuda.synchronize(device)
            started = time.perf_counter()
        idx = torch.randperm(n, device=device)[:batch]
        x, y = ds.get_batch(idx, True)
        x = to_device(x, device, torch.channels_last)
    torch.cuda.synchronize(device)
    return 1000 * (time.perf_counter() - started) / steps


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    device = torch.device("cuda")
    info = {k: str(v) for k, v in device_info(device).items()}
    build, side, batch = MODELS["resnet50"]
    images, labels = synthetic_images(batch * 20, side, 1000)
    rows = []

    def emit(row):
        row = {**row, **info}
        print(json.dumps(row), flush=True)
        rows.append(row)

    ds = ImageTensorDataset(images, labels).to(device)
    for name, forward in (("current", ORIGINAL), ("fused", fused)):
        Normalize.forward = forward
        emit({"probe": "input_path_ms", "normalize": name, "ms_per_step": input_ms(ds, batch, device)})
    for compiled in (False, True):
        for repeat in range(args.repeats):
            for loop in ("reference", "current", "fused"):
                torch.manual_seed(0)
                if loop == "reference":
                    img_s = reference_loop(build, side, batch, device, 30, 10, compiled)
                else:
                    Normalize.forward = ORIGINAL if loop == "current" else fused
                    img_s = trainer_throughput(
                        build, ImageTensorDataset(images, labels), side, batch, device, 3, compiled
                    )
                emit({"probe": "throughput", "loop": loop, "compiled": compiled, "repeat": repeat, "img_s": img_s})
                torch.cuda.empty_cache()
    Normalize.forward = ORIGINAL
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
