"""Training throughput of components/training/loop.py against a plain PyTorch loop, measured side by side.

Needs torch, torchvision and numpy only, so it runs on a GPU machine that has nothing else.

    python benchmarks/train_throughput.py single --out results.jsonl                      # one GPU: everything
    torchrun --standalone --nproc_per_node=2 benchmarks/train_throughput.py ddp --out r.jsonl   # N GPUs
    python benchmarks/train_throughput.py fit --data-dir .bench-data/fashion-mnist        # the trainer's entry
    torchrun --standalone --nproc_per_node=2 benchmarks/train_throughput.py fit --data-dir ...  # same, N GPUs
    python benchmarks/train_throughput.py single --smoke                                  # tiny, on the CPU

``single`` measures, for ResNet-50 at 224 px, MobileNetV2 at 224 px and the face-mask CNN at 64 px:
  - reference: a plain loop (bf16 autocast, channels_last, SGD, one random batch reused: synthetic);
  - trainer/synthetic: ``fit`` on uint8 images already on the GPU, normalised there (no augmentation);
  - trainer/real: ``fit`` on uint8 256 px images held in pinned HOST memory (as data that does not fit the
    GPU would be), each batch gathered, copied and randomly cropped, flipped and normalised ON the GPU;
  - trainer/jpeg: the same from JPEG bytes in host memory, decoded on the GPU (torchvision.io.decode_jpeg);
  - trainer/dataloader: the per-item host path (DataLoader workers, transforms.v2 per image), for contrast;
and reports images/s and model FLOP utilisation (FLOPs counted by torch's FlopCounterMode, over the bf16
dense peak). Then time-to-accuracy of a small CNN on Fashion-MNIST kept on the GPU.

``ddp`` measures the trainer on ResNet-50 over all ranks (global batch = per-GPU batch x ranks); run it on the
same machine as a one-process ``ddp`` run to get the scaling.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from components.models.cnn import MaskCNN  # noqa: E402
from components.settings import TrainSettings  # noqa: E402
from components.training import distributed  # noqa: E402
from components.training.augment import ArrayDataset, train_transform  # noqa: E402
from components.training.device_data import BatchAugment, ImageTensorDataset, Normalize  # noqa: E402
from components.training.loop import fit  # noqa: E402
from components.training.tasks import ClassificationTask  # noqa: E402

BF16_DENSE_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # datasheet, dense, without sparsity


# ---------------------------------------------------------------------------------------------- models
def fashion_cnn() -> nn.Module:
    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(1, 32),
        *block(32, 32),
        nn.MaxPool2d(2),  # 28 -> 14
        *block(32, 64),
        *block(64, 64),
        nn.MaxPool2d(2),  # 14 -> 7
        *block(64, 128),
        nn.MaxPool2d(2),  # 7 -> 3
        nn.Flatten(),
        nn.Linear(128 * 9, 10),
    )


MODELS = {  # name -> (builder, image side, per-GPU batch)
    "resnet50": (lambda: torchvision.models.resnet50(num_classes=1000), 224, 256),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(num_classes=1000), 224, 256),
    "mask_cnn": (lambda: MaskCNN(num_classes=2), 64, 256),
}


def train_flops_per_image(build, side: int) -> float:
    """Forward + backward FLOPs of one image, counted on the meta device (no memory, no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build().to("meta")
    x = torch.randn(2, 3, side, side, device="meta")
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    return counter.get_total_flops() / 2


# ---------------------------------------------------------------------------------------------- timing
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_loop(build, side, batch, device, steps, warmup, compile_model=False) -> float:
    """The plain PyTorch loop the issue's reference figures come from; images/s."""
    model = build().to(device, memory_format=torch.channels_last)
    step_model = torch.compile(model) if compile_model else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(batch, 3, side, side, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 2 if side == 64 else 1000, (batch,), device=device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step():
        with amp:
            loss = nn.functional.cross_entropy(step_model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch / (time.perf_counter() - started)


def trainer_throughput(
    build, train_set, side, global_batch, device, epochs, compile_model=False, num_workers=0, graphs=False
) -> float:
    """``fit`` for ``epochs`` epochs; images/s over all ranks from the epochs after the first (warm-up, compile)."""
    blank = np.zeros((8, side, side, 3), np.uint8), np.zeros(8, np.int64)  # a tiny validation set: ~free
    val_set = ImageTensorDataset(*blank) if hasattr(train_set, "get_batch") else ArrayDataset(*blank)
    config = TrainSettings(
        cudnn_benchmark=True,  # fixed shapes; the untimed warm-up pays the search
        epochs=epochs,
        batch_size=global_batch,
        lr=0.1,
        optimizer="sgd",
        momentum=0.9,
        grad_clip=None,
        schedule="constant",
        patience=10**6,
        compile=compile_model,
        num_workers=num_workers,
        cuda_graphs=graphs,
    )
    model = build()
    result = fit(model, ClassificationTask(), train_set, val_set, config, device, progress=False)
    _, world = distributed.rank_and_world()
    steps = len(train_set) // global_batch
    seconds = sum(e["train_seconds"] for e in result.history[1:])
    return steps * global_batch * (len(result.history) - 1) / seconds


def synthetic_images(n, side, classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randint(0, 256, (n, side, side, 3), dtype=torch.uint8, generator=g),
        torch.randint(0, classes, (n,), generator=g),
    )


class JpegDataset:
    """JPEG bytes in host memory, decoded on the GPU a batch at a time; a batch dataset for ``fit``."""

    def __init__(self, jpegs: list[torch.Tensor], labels: torch.Tensor, augment: nn.Module, normalize: nn.Module):
        self.jpegs, self.labels, self.augment, self.normalize = jpegs, labels, augment, normalize
        self.device = torch.device("cpu")  # where the indices live
        self.target = torch.device("cpu")

    def __len__(self):
        return len(self.jpegs)

    def to(self, device):
        self.target = torch.device(device)
        self.augment.to(self.target)
        self.normalize.to(self.target)
        return self

    def get_batch(self, indices, train):
        decoded = torchvision.io.decode_jpeg([self.jpegs[i] for i in indices.tolist()], device=self.target)
        x = torch.stack(decoded)
        x = (self.augment if train else self.normalize)(x)
        return x, self.labels.index_select(0, indices).to(self.target, non_blocking=True)


def make_jpegs(images_nhwc: torch.Tensor, device) -> list[torch.Tensor]:
    """JPEG bytes (on the host) of ``images``; encoded on the GPU when there is one, which is quicker."""
    jpegs = []
    for chunk in images_nhwc.split(256):
        x = chunk.permute(0, 3, 1, 2).to(device).float()
        # Blur the noise first: pure noise makes JPEGs several times larger (and slower) than photographs.
        x = nn.functional.interpolate(nn.functional.avg_pool2d(x, 8), size=x.shape[-2:], mode="bilinear")
        x = (x + torch.rand_like(x) * 32).clamp(0, 255).to(torch.uint8)  # some fine detail back
        encoded = torchvision.io.encode_jpeg(list(x), quality=90)
        jpegs += [e.cpu() for e in encoded]
    return jpegs


# ---------------------------------------------------------------------------------------------- Fashion-MNIST
def read_idx(path: Path) -> np.ndarray:
    """MNIST's IDX format (numpy only; the same reader as components/data/formats/idx.py, which also needs pandas)."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data[4 + 4 * ndim :], dtype=np.uint8).reshape(shape).copy()


def load_fashion_mnist(root: Path):
    files = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    return [read_idx(root / f) for f in files]


def fashion_datasets(root: Path, smoke: bool, augment: bool = False):
    x_train, y_train, x_test, y_test = load_fashion_mnist(root)
    if smoke:
        x_train, y_train, x_test, y_test = x_train[:2048], y_train[:2048], x_test[:512], y_test[:512]
    stats = dict(mean=(0.286,), std=(0.353,))  # Fashion-MNIST's pixel mean and std
    aug = BatchAugment(flip=True, translate=0.06, **stats) if augment else BatchAugment(flip=False, **stats)
    return (
        ImageTensorDataset(x_train, y_train, augment=aug, normalize=Normalize(**stats)),
        ImageTensorDataset(x_test, y_test, normalize=Normalize(**stats)),
    )


def time_to_accuracy(root: Path, device, smoke: bool, target: float, epoch_options, batch: int, lr: float):
    """Fresh runs of 'epochs' epochs (OneCycle fits its schedule to the length); the shortest that reaches
    ``target`` test accuracy gives the time. Data on the GPU; a 1-epoch run first pays cuDNN's autotuning."""
    train, test = fashion_datasets(root, smoke)
    rows = []
    for epochs in [1, *epoch_options]:
        torch.manual_seed(0)
        config = TrainSettings(
            cudnn_benchmark=True,  # fixed shapes; the untimed warm-up pays the search
            epochs=epochs,
            batch_size=batch,
            lr=lr,
            weight_decay=5e-4,
            grad_clip=None,
            schedule="onecycle",
            patience=10**6,
        )
        started = time.perf_counter()
        result = fit(fashion_cnn(), ClassificationTask(), train, test, config, device, progress=False)
        wall = time.perf_counter() - started
        if epochs == 1 and len(rows) == 0 and epoch_options:
            rows.append(None)  # the warm-up run
            continue
        rows.append(
            dict(
                section="fashion_mnist",
                epochs=epochs,
                batch=batch,
                lr=lr,
                test_accuracy=round(result.history[-1]["val_accuracy"], 4),
                train_seconds=round(sum(e["train_seconds"] for e in result.history), 3),
                seconds_with_eval=round(sum(e["seconds"] for e in result.history), 3),
                fit_wall_seconds=round(wall, 3),
                reached=result.history[-1]["val_accuracy"] >= target,
            )
        )
    return [r for r in rows if r is not None]


# ---------------------------------------------------------------------------------------------- runs
def device_info(device) -> dict:
    info = dict(
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        world_size=distributed.rank_and_world()[1],
    )
    if device.type == "cuda":
        info["device"] = torch.cuda.get_device_name(device)
        a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
        b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
        for _ in range(3):
            a @ b
        sync(device)
        started = time.perf_counter()
        for _ in range(10):
            a @ b
        sync(device)
        info["matmul_bf16_tflops"] = round(10 * 2 * 8192**3 / (time.perf_counter() - started) / 1e12, 1)
        del a, b
    else:
        info["device"] = "cpu"
    return info


def peak_flops(info: dict) -> float | None:
    return next((v for k, v in BF16_DENSE_PEAK.items() if k in info["device"]), None)


def emit(row: dict, out: Path | None, info: dict):
    if "img_s" in row and "flops_per_image" in row:
        achieved = row["img_s"] * row["flops_per_image"] / max(1, info.get("world_size", 1))
        peak = peak_flops(info)
        row["tflops_per_gpu"] = round(achieved / 1e12, 1)
        row["mfu"] = round(achieved / peak, 3) if peak else None
    row["img_s"] = round(row["img_s"], 1) if "img_s" in row else None
    line = json.dumps({**row, "device": info["device"], "torch": info["torch"], "date": info["date"]})
    print(line, flush=True)
    if out is not None:
        with out.open("a") as fh:
            fh.write(line + "\n")


def run_single(args, device):
    info = device_info(device)
    out = Path(args.out) if args.out else None
    emit({"section": "device", **{k: v for k, v in info.items() if k not in ("device", "torch", "date")}}, out, info)

    def measure(row: dict, run):
        """One figure; a failure is recorded as a row and the rest of the benchmark goes on."""
        try:
            emit({**row, "img_s": run()}, out, info)
        except Exception as error:  # noqa: BLE001 - a lost figure must not lose the others
            emit({**row, "error": f"{type(error).__name__}: {error}"[:500]}, out, info)
        if device.type == "cuda":
            torch.cuda.empty_cache()

    small = args.smoke
    steps, warmup, epochs, steps_per_epoch = (3, 1, 2, 2) if small else (30, 10, 3, 20)
    for name in args.models:
        build, side, batch = MODELS[name]
        if small:
            side, batch = min(side, 64), 8
        base = dict(
            section="throughput", model=name, side=side, batch=batch, flops_per_image=train_flops_per_image(build, side)
        )
        n = batch * steps_per_epoch
        images, labels = synthetic_images(n, side, 2 if name == "mask_cnn" else 1000)
        big, _ = synthetic_images(n, side * 8 // 7, 1)  # 256 px for 224: room for the random crop
        for compiled in [False, True] if (name in args.compile_models and not small) else [False]:
            mode = "compiled" if compiled else "eager"
            torch.manual_seed(0)
            measure(
                {**base, "loop": "reference", "input": "synthetic", "mode": mode},
                lambda: reference_loop(build, side, batch, device, steps, warmup, compiled),
            )
            # Trainer, synthetic: uint8 images on the GPU, only normalised there.
            measure(
                {**base, "loop": "trainer", "input": "synthetic", "mode": mode},
                lambda: trainer_throughput(
                    build, ImageTensorDataset(images, labels), side, batch, device, epochs, compiled
                ),
            )
            # Trainer, real input path: uint8 images in pinned host memory, random crop + flip on the GPU.
            crop = BatchAugment(output_size=side, crop_scale=(0.35, 1.0), flip=True)
            real = ImageTensorDataset(
                big, labels, augment=crop, normalize=Normalize(output_size=side), max_device_fraction=0.0
            )
            measure(
                {**base, "loop": "trainer", "input": "real:host-uint8+gpu-augment", "mode": mode},
                lambda: trainer_throughput(build, real, side, batch, device, epochs, compiled),
            )
            if not compiled:

                def jpeg_run():
                    jpeg = JpegDataset(
                        make_jpegs(big, device),
                        labels,
                        BatchAugment(output_size=side, crop_scale=(0.35, 1.0), flip=True),
                        Normalize(output_size=side),
                    )
                    return trainer_throughput(build, jpeg, side, batch, device, epochs, compiled)

                measure({**base, "loop": "trainer", "input": "real:host-jpeg+gpu-decode", "mode": mode}, jpeg_run)
            if name == "resnet50" and not compiled:
                workers = 0 if small else min(12, os.cpu_count() or 1)
                per_item = ArrayDataset(big[:, :side, :side].numpy(), labels.numpy(), train_transform("light"))
                measure(
                    {**base, "loop": "trainer", "input": f"per-item:dataloader-{workers}-workers", "mode": mode},
                    lambda: trainer_throughput(build, per_item, side, batch, device, 2, False, workers),
                )
    if args.data_dir:
        try:
            for row in time_to_accuracy(
                Path(args.data_dir),
                device,
                small,
                args.target,
                [2] if small else args.epochs,
                128 if small else args.fm_batch,
                args.fm_lr,
            ):
                emit(row, out, info)
        except Exception as error:  # noqa: BLE001
            emit({"section": "fashion_mnist", "error": f"{type(error).__name__}: {error}"[:500]}, out, info)


def run_ddp(args, device):
    """The trainer on ResNet-50 over every rank of this torchrun job (or one process)."""
    info = device_info(device)
    rank, world = distributed.rank_and_world()
    out = Path(args.out) if (args.out and rank == 0) else None
    name = "resnet50"
    build, side, batch = MODELS[name]
    steps_per_epoch, epochs = 20, 3
    if args.smoke:
        side, batch, steps_per_epoch, epochs = 32, 4, 2, 2
    flops = train_flops_per_image(build, side)
    for compiled in args.ddp_modes:
        images, labels = synthetic_images(batch * world * steps_per_epoch, side, 1000)
        img_s = trainer_throughput(
            build, ImageTensorDataset(images, labels), side, batch * world, device, epochs, compiled == "compiled"
        )
        if rank == 0:
            emit(
                dict(
                    section="ddp",
                    model=name,
                    side=side,
                    per_gpu_batch=batch,
                    gpus=world,
                    mode=compiled,
                    input="synthetic",
                    img_s=img_s,
                    flops_per_image=flops,
                ),
                out,
                info,
            )


def run_fit(args, device):
    """The trainer's entry point, the same on 1 or N GPUs: Fashion-MNIST small CNN, printed per epoch on rank 0."""
    train, test = fashion_datasets(Path(args.data_dir), args.smoke, augment=args.augment)
    config = TrainSettings(
        cudnn_benchmark=True,  # fixed shapes; the untimed warm-up pays the search
        epochs=args.epochs[0],
        batch_size=128 if args.smoke else args.fm_batch,
        lr=args.fm_lr,
        weight_decay=5e-4,
        grad_clip=None,
        compile=args.compile,
        patience=10**6,
    )
    torch.manual_seed(0)
    result = fit(
        fashion_cnn(),
        ClassificationTask(),
        train,
        test,
        config,
        device,
        progress=False,
        on_epoch=lambda e: print(json.dumps(e), flush=True),
    )
    if distributed.is_main_process():
        print(f"best epoch {result.best_epoch}, test accuracy {result.history[-1]['val_accuracy']:.4f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["single", "ddp", "fit"])
    p.add_argument("--out", help="append JSON lines here")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, for the CPU")
    p.add_argument("--device", default="auto")
    p.add_argument("--models", nargs="*", default=list(MODELS))
    p.add_argument("--compile-models", nargs="*", default=["resnet50"])
    p.add_argument("--ddp-modes", nargs="+", default=["eager", "compiled"])
    p.add_argument("--data-dir", help="folder with the four Fashion-MNIST IDX .gz files")
    p.add_argument("--target", type=float, default=0.91)
    p.add_argument("--epochs", type=int, nargs="+", default=[4, 6, 8, 10])
    p.add_argument("--fm-batch", type=int, default=512)
    p.add_argument("--fm-lr", type=float, default=4e-3)
    p.add_argument("--augment", action="store_true")
    p.add_argument("--compile", action="store_true")
    args = p.parse_args(argv)
    ctx = distributed.init_from_env(args.device)
    try:
        {"single": run_single, "ddp": run_ddp, "fit": run_fit}[args.what](args, ctx.device)
    finally:
        distributed.cleanup()


if __name__ == "__main__":
    main()
