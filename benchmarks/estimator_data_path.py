"""The pipeline estimator's two data paths on one device: whole batches augmented on the device (uint8 images
held as one tensor, ``components.training.device_data``) against torchvision's per-image transforms through a DataLoader.

    python benchmarks/estimator_data_path.py --data-dir .bench-data/fashion-mnist --out results.json

``TorchImageClassifier`` takes the batch path for the policies a batched kernel can do ('none', and on a GPU
'light' and 'affine'); 'strong' (colour jitter) stays per image. The per-image figure is the same fit forced onto
``augment.ArrayDataset``. Reports training images/s (epochs after the first) and test accuracy of each.
Needs torch, torchvision, numpy and scikit-learn.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.data.formats.idx import FASHION_MNIST, load_mnist  # noqa: E402
from components.projects.settings.image_classification import ModelSettings  # noqa: E402
from components.settings import TrainSettings  # noqa: E402
from components.training import augment  # noqa: E402
from components.training.estimators import TorchImageClassifier  # noqa: E402


class PerImageClassifier(TorchImageClassifier):
    """The same estimator, always on torchvision's per-image transforms (the path before the batch one)."""

    def _train_dataset(self, X, y_idx, mean, std):
        return augment.ArrayDataset(X, y_idx, augment.train_transform(self.augmentation, mean, std))


def measure(cls, X, y, X_test, y_test, policy: str, epochs: int, device: str) -> dict:
    est = cls(
        model=ModelSettings(name="mc_dropout_cnn"),
        train=TrainSettings(epochs=epochs, batch_size=256, lr=3e-3),
        augmentation=policy,
        val_fraction=0.0,
        mean=(0.286,),
        std=(0.353,),
        device=device,
        progress=False,
    )
    started = time.perf_counter()
    est.fit(X, y)
    wall = time.perf_counter() - started
    steady = [e["train_seconds"] for e in est.fit_result_.history[1:]]
    return {
        "path": cls.__name__,
        "policy": policy,
        "device": device,
        "epochs": epochs,
        "train_img_per_s": round(len(X) * len(steady) / sum(steady)),
        "fit_seconds": round(wall, 2),
        "test_accuracy": round(float(est.score(X_test, y_test)), 4),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=FASHION_MNIST)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--device", default="cuda")
    p.add_argument("--limit", type=int, help="first N training images only (a quick check)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    X, y, X_test, y_test = load_mnist(args.data_dir)
    X, y, X_test = X[: args.limit, ..., None], y[: args.limit], X_test[..., None]
    rows = []
    for policy in ("none", "affine"):
        for cls in (TorchImageClassifier, PerImageClassifier):
            rows.append(measure(cls, X, y, X_test, y_test, policy, args.epochs, args.device))
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
