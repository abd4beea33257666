"""The one trainer's per-step overhead: ``fit`` (classification task) against a plain loop, on one GPU.

Same process, same model and batch, the two alternating so clock drift hits both:

    python benchmarks/trainer_overhead.py --repeats 3 --out results.jsonl                    # ResNet-50, as before
    python benchmarks/trainer_overhead.py --model mask_cnn --modes eager --inputs synthetic real --repeats 3
    python benchmarks/trainer_overhead.py --model resnet50 --modes compiled --batches 256 512 --repeats 1
    python benchmarks/trainer_overhead.py --model mask_cnn --modes eager graphed --inputs synthetic real
    python benchmarks/trainer_overhead.py --model mask_cnn --device cpu --smoke                 # tiny, on the CPU

``--inputs synthetic``: the trainer reads uint8 images already on the GPU (normalised there); ``real``: uint8
images 8/7 the side in pinned HOST memory, gathered, copied and randomly cropped + flipped on the GPU (what data
that does not fit the GPU goes through); the plain loop reuses one random float batch (benchmarks/
train_throughput.py's ``reference_loop``). Each row: images/s and MFU (FLOPs by FlopCounterMode over the bf16
dense datasheet peak). A compiled measurement starts from ``torch._dynamo.reset()``, so every batch size gets
static shapes of its own (the compile itself is in the trainer's first epoch, which is not timed).

Needs torch, torchvision, numpy (and pydantic for the TrainSettings the trainer takes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.train_throughput import (  # noqa: E402
    MODELS,
    device_info,
    peak_flops,
    reference_loop,
    synthetic_images,
    train_flops_per_image,
    trainer_throughput,
)
from components.training.device_data import BatchAugment, ImageTensorDataset, Normalize  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50", choices=list(MODELS))
    p.add_argument("--batches", type=int, nargs="+", help="per-step batch sizes (default: the model's)")
    p.add_argument(
        "--modes",
        nargs="+",
        default=["eager", "compiled"],
        choices=["eager", "compiled", "graphed"],
        help="graphed: the trainer with train.cuda_graphs against the same eager plain loop",
    )
    p.add_argument("--inputs", nargs="+", default=["synthetic"], choices=["synthetic", "real"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps-per-epoch", type=int, default=20, help="the trainer's epoch; epochs 2.. are timed")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--device", default="cuda")
    p.add_argument("--smoke", action="store_true", help="tiny sizes (for the CPU)")
    p.add_argument("--tag", default="", help="a label copied into every row (e.g. the code's commit)")
    p.add_argument("--out")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    info = device_info(device)
    build, side, default_batch = MODELS[args.model]
    steps, warmup = (30, 10) if not args.smoke else (3, 1)
    if args.smoke:
        # (the plain loop tells the face-mask CNN by its 64 px side: its two classes)
        side, default_batch, args.steps_per_epoch, args.epochs = min(side, 64), 8, 2, 2
    flops = train_flops_per_image(build, side)
    peak = peak_flops(info)
    classes = 2 if args.model == "mask_cnn" else 1000
    for batch in args.batches or [default_batch]:
        n = batch * args.steps_per_epoch
        images, labels = synthetic_images(n, side, classes)
        big = synthetic_images(n, side * 8 // 7, 1)[0] if "real" in args.inputs else None
        for mode in args.modes:
            compiled = mode == "compiled"

            def measure(loop, source):
                if loop == "reference":
                    return reference_loop(build, side, batch, device, steps, warmup, compiled)
                if source == "synthetic":
                    data = ImageTensorDataset(images, labels)
                else:
                    data = ImageTensorDataset(
                        big,
                        labels,
                        augment=BatchAugment(output_size=side, crop_scale=(0.35, 1.0), flip=True),
                        normalize=Normalize(output_size=side),
                        max_device_fraction=0.0,  # stays in pinned host memory
                    )
                return trainer_throughput(
                    build, data, side, batch, device, args.epochs, compiled, graphs=mode == "graphed"
                )

            for repeat in range(args.repeats):
                runs = [("reference", "synthetic")] + [("trainer", i) for i in args.inputs]
                for loop, source in runs:
                    if compiled:
                        torch._dynamo.reset()
                    torch.manual_seed(0)
                    try:
                        img_s, error = measure(loop, source), None
                    except Exception as e:  # noqa: BLE001 - a lost figure must not lose the others
                        img_s, error = float("nan"), f"{type(e).__name__}: {e}"[:500]
                    row = {
                        "model": args.model,
                        "side": side,
                        "batch": batch,
                        "loop": loop,
                        "input": source,
                        "mode": mode,
                        "repeat": repeat,
                        "img_s": round(img_s, 1),
                        "mfu": round(img_s * flops / peak, 4) if peak else None,
                        "tag": args.tag,
                        **({"error": error} if error else {}),
                        **{k: str(v) for k, v in info.items()},
                    }
                    print(json.dumps(row), flush=True)
                    if args.out:  # row by row: a run cut short keeps what it measured
                        with Path(args.out).open("a") as fh:
                            fh.write(json.dumps(row) + "\n")
                    if device.type == "cuda":
                        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
