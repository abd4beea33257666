"""The trainer on the CPU: both precisions learn, resume continues the same run, batch datasets read the same
samples as the DataLoader path, and the GPU batch augmentation does what it says."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from components.models import build_model
from components.settings import TrainSettings
from components.training.augment import ArrayDataset, normalize, train_transform
from components.training.device_data import BatchAugment, ImageTensorDataset, Normalize
from components.training.loop import fit
from components.training.tasks import ClassificationTask

pytestmark = pytest.mark.unit


def blobs(n: int, size: int = 8, channels: int = 3, classes: int = 3, seed: int = 0):
    """uint8 images whose class shows as a bright quadrant (so flips and small shifts keep it learnable)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.integers(0, 80, (n, size, size, channels)).astype(np.uint8)
    half = size // 2
    for label, (r, c) in enumerate([(0, 0), (half, half), (0, half)][:classes]):
        x[y == label, r : r + half, c : c + half, :] += 150
    return x, y


def tiny_cnn(channels: int = 3, classes: int = 3, dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(32, classes),
    )


@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "bf16"])
def test_both_precisions_learn(amp):
    x, y = blobs(96)
    torch.manual_seed(0)
    model = tiny_cnn()
    config = TrainSettings(epochs=8, batch_size=16, lr=0.02, amp=amp, amp_on_cpu=amp, patience=100)
    result = fit(
        model, ClassificationTask(), ArrayDataset(x, y), ArrayDataset(x, y), config, torch.device("cpu"), progress=False
    )
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < 0.5 * first["train_loss"]
    assert last["val_accuracy"] >= 0.9  # chance is 1/3
    if amp:  # the bf16 run really ran in bf16: it differs from fp32 beyond rounding of the sum
        torch.manual_seed(0)
        fp32 = fit(
            tiny_cnn(),
            ClassificationTask(),
            ArrayDataset(x, y),
            ArrayDataset(x, y),
            config.model_copy(update={"amp": False}),
            torch.device("cpu"),
            progress=False,
        )
        assert fp32.history[0]["train_loss"] != result.history[0]["train_loss"]
        assert abs(fp32.history[-1]["train_loss"] - last["train_loss"]) < 0.1  # but learns the same


class Crash(RuntimeError):
    pass


@pytest.mark.parametrize("batch_dataset", [False, True], ids=["dataloader", "batch-dataset"])
def test_resume_continues_the_same_trajectory(tmp_path, batch_dataset):
    x, y = blobs(64)
    if batch_dataset:
        make = lambda: (
            ImageTensorDataset(x, y, augment=BatchAugment(flip=True, translate=0.1, brightness=0.2)),  # noqa: E731
            ImageTensorDataset(x, y),
        )
    else:
        make = lambda: (ArrayDataset(x, y, train_transform("light")), ArrayDataset(x, y, normalize()))  # noqa: E731
    config = TrainSettings(epochs=4, batch_size=16, lr=0.01, patience=100)

    torch.manual_seed(1)
    straight = fit(tiny_cnn(dropout=0.3), ClassificationTask(), *make(), config, torch.device("cpu"), progress=False)

    def crash_after_two(stats):
        if stats["epoch"] == 2:
            raise Crash

    torch.manual_seed(1)
    with pytest.raises(Crash):
        fit(
            tiny_cnn(dropout=0.3),
            ClassificationTask(),
            *make(),
            config,
            torch.device("cpu"),
            progress=False,
            checkpoint_dir=tmp_path,
            on_epoch=crash_after_two,
        )
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
    torch.manual_seed(999)  # a different initialisation: everything must come from the checkpoint
    resumed = fit(
        tiny_cnn(dropout=0.3),
        ClassificationTask(),
        *make(),
        config,
        torch.device("cpu"),
        progress=False,
        checkpoint_dir=tmp_path,
        resume=True,
    )

    assert [e["epoch"] for e in resumed.history] == [1, 2, 3, 4]
    for a, b in zip(straight.history, resumed.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5, abs=1e-6)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5, abs=1e-6)


def test_batch_dataset_reads_the_same_batches_as_the_dataloader():
    """Without augmentation the two input paths feed identical batches, so the runs match step for step."""
    x, y = blobs(48, channels=1)
    config = TrainSettings(epochs=3, batch_size=8, lr=0.01, patience=100)
    mean, std = (0.5,), (0.5,)
    runs = []
    for data in (
        (ArrayDataset(x, y, normalize(mean, std)), ArrayDataset(x, y, normalize(mean, std))),
        (ImageTensorDataset(x, y), ImageTensorDataset(x, y)),
    ):
        torch.manual_seed(0)
        runs.append(fit(tiny_cnn(channels=1), ClassificationTask(), *data, config, torch.device("cpu"), progress=False))
    for a, b in zip(*(r.history for r in runs)):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_accuracy"] == b["val_accuracy"]


def test_a_tensor_dataset_is_read_a_batch_at_a_time_with_the_dataloaders_batches_in_its_order():
    from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset

    from components.training.loop import Runtime

    x, y = torch.randn(50, 6), torch.randint(0, 3, (50,))
    batches = ClassificationTask().train_batches(
        TensorDataset(x, y), 16, Runtime(torch.device("cpu")), seed=3, generator=torch.Generator()
    )
    batches.set_epoch(1)
    sampler = DistributedSampler(TensorDataset(x, y), num_replicas=1, rank=0, shuffle=True, seed=3)
    sampler.set_epoch(1)
    expected = list(DataLoader(TensorDataset(x, y), batch_size=16, sampler=sampler, drop_last=True))
    got = list(batches)
    assert len(got) == len(expected) == 3
    for (gx, gy), (ex, ey) in zip(got, expected, strict=True):
        assert torch.equal(gx, ex) and torch.equal(gy, ey)

    class Items(Dataset):  # the same tensors, read one item at a time through a DataLoader
        def __len__(self):
            return len(y)

        def __getitem__(self, i):
            return x[i], y[i]

    config = TrainSettings(epochs=3, batch_size=8, lr=0.01, patience=100)
    runs = []
    for data in ((Items(), Items()), (TensorDataset(x, y), TensorDataset(x, y))):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))  # no dropout: a DataLoader draws a
        # number from torch's generator per epoch, which moves dropout's masks, not the batches
        runs.append(fit(model, ClassificationTask(), *data, config, torch.device("cpu"), progress=False).history)
    assert [(r["train_loss"], r["val_loss"]) for r in runs[0]] == [(r["train_loss"], r["val_loss"]) for r in runs[1]]


def test_batch_augment_identity_flip_and_crop():
    images = torch.randint(0, 256, (16, 3, 12, 12), dtype=torch.uint8)
    plain = Normalize()(images)
    # No random geometry: the affine resampling lands exactly on the pixel centres.
    assert torch.allclose(BatchAugment(flip=False)(images), plain, atol=1e-5)
    # Flip only: every sample is either itself or its mirror image, and both occur.
    flipped = BatchAugment(flip=True)(images)
    same = (flipped - plain).abs().amax(dim=(1, 2, 3)) < 1e-5
    mirrored = (flipped - plain.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert bool((same | mirrored).all()) and same.any() and mirrored.any()
    # Crop and zoom to a new size: the shape follows output_size and values stay in the normalised range.
    out = BatchAugment(output_size=8, crop_scale=(0.5, 1.0), degrees=10, brightness=0.3, contrast=0.3)(images)
    assert out.shape == (16, 3, 8, 8) and out.dtype == torch.float32
    assert Normalize(output_size=8)(images).shape == (16, 3, 8, 8)


def test_image_tensor_dataset_is_also_a_plain_dataset():
    x, y = blobs(10, channels=1)
    ds = ImageTensorDataset(x, y)
    item, label = ds[3]
    assert item.shape == (1, 8, 8) and int(label) == y[3]
    xb, yb = ds.get_batch(torch.tensor([3, 0]), train=False)
    assert torch.equal(xb[0], item) and yb.tolist() == [y[3], y[0]]
    with pytest.raises(TypeError):
        ImageTensorDataset(x.astype(np.float32), y)


def test_mask_cnn_trains_with_sgd_on_batch_dataset():
    """The face-mask CNN (with BatchNorm and dropout) on the batch path, with SGD: the new options train."""
    x, y = blobs(64, size=16, classes=2)
    torch.manual_seed(0)
    model = build_model("mask_cnn", num_classes=2, width=8, depth=2)
    config = TrainSettings(epochs=6, batch_size=16, lr=0.05, optimizer="sgd", patience=100)
    result = fit(
        model,
        ClassificationTask(),
        ImageTensorDataset(x, y, augment=BatchAugment(flip=True)),
        ImageTensorDataset(x, y),
        config,
        torch.device("cpu"),
        progress=False,
    )
    assert result.history[-1]["val_accuracy"] >= 0.9


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fast_path_trains():
    x, y = blobs(256, size=16)
    torch.manual_seed(0)
    config = TrainSettings(epochs=4, batch_size=64, lr=0.02, patience=100, compile=True)
    result = fit(
        tiny_cnn(),
        ClassificationTask(),
        ImageTensorDataset(x, y, augment=BatchAugment(flip=True)),
        ImageTensorDataset(x, y),
        config,
        torch.device("cuda"),
        progress=False,
    )
    assert result.history[-1]["val_accuracy"] >= 0.9


def test_a_diverging_run_says_so_with_its_epoch_not_a_metric_error_about_nan():
    """Today an LR far too high ends in sklearn's "Input contains NaN" from the validation metric."""
    from components.errors import DlfolioError, TrainingDiverged

    x, y = blobs(48)
    torch.manual_seed(0)
    config = TrainSettings(epochs=3, batch_size=16, lr=1e12, optimizer="sgd", grad_clip=None, schedule="constant")
    with pytest.raises(
        TrainingDiverged, match=r"^training diverged at epoch 1 \((loss|weights not finite, loss) "
    ) as err:
        fit(
            tiny_cnn(),
            ClassificationTask(),
            ArrayDataset(x, y),
            ArrayDataset(x, y),
            config,
            torch.device("cpu"),
            progress=False,
        )
    assert isinstance(err.value, DlfolioError) and err.value.epoch == 1


def test_l1_drives_the_weights_of_uninformative_inputs_to_zero_where_l2_does_not():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 10)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)  # inputs 2..9 are noise
    data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    base = dict(epochs=20, batch_size=32, lr=0.1, optimizer="sgd", momentum=0.0, schedule="constant", grad_clip=None)

    def noise_weights(**penalty) -> np.ndarray:
        torch.manual_seed(0)
        model = nn.Linear(10, 2)
        config = TrainSettings(**base, patience=100, amp=False, **penalty)
        fit(model, ClassificationTask(), data, None, config, torch.device("cpu"), progress=False)
        return model.weight.detach().abs().numpy()

    l1, l2 = noise_weights(l1=0.05), noise_weights(weight_decay=0.05)  # L2: SGD's weight_decay, l2 / 2 * sum W^2
    # SGD's subgradient steps leave a zeroed weight within lr * l1 = 0.005 of zero
    near_zero = lambda w: float(np.mean(w[:, 2:] < 0.02))  # noqa: E731
    assert near_zero(l1) > 0.9 and near_zero(l2) < 0.3, (l1.round(3), l2.round(3))
    assert l1[:, :2].min() > 0.3  # the informative inputs keep their weights
    assert TrainSettings().l1 == 0.0  # off unless asked for


def test_epoch_loss_is_the_per_step_accumulators_sum_bit_for_bit():
    """The loop keeps each step's loss and sums the epoch once at its end: the very float32 sums a per-step
    accumulator (``total += loss * weight``) gives, for count weights and for 0-d tensor weights."""
    from components.training.loop import _weighted_sum

    rng = np.random.default_rng(0)
    losses = [torch.tensor(v, dtype=torch.float32) for v in rng.uniform(0.01, 3.0, 257)]
    for weights in (
        [int(w) for w in rng.integers(1, 64, 257)],
        [torch.tensor(int(w)) for w in rng.integers(1, 9, 257)],
    ):
        total, seen = torch.zeros(()), torch.zeros(())
        for loss, weight in zip(losses, weights):
            total += loss * weight
            seen += weight
        assert torch.equal(_weighted_sum(losses, weights, torch.device("cpu")), torch.stack([total, seen]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batches_from_host_memory_and_channels_last_storage_are_the_plain_gathers():
    """Host-resident images (gathered a batch ahead on a worker thread) and GPU-resident channels_last images
    give exactly the normalised gathers of the plain path, in the loader's order; channels_last comes out so."""
    from components.training.device_data import BatchLoader

    x, y = blobs(200, size=12)
    cuda = torch.device("cuda")
    plain = ImageTensorDataset(x, y)
    order = list(torch.randperm(200).tolist())
    expected = [plain.get_batch(torch.tensor(order[k : k + 32]), train=False) for k in range(0, 200, 32)]
    host = ImageTensorDataset(x, y, max_device_fraction=0.0).to(cuda)
    resident = ImageTensorDataset(x, y).to(cuda, memory_format=torch.channels_last)
    assert host.images.device.type == "cpu" and host.images.is_pinned()
    for dataset in (host, resident):
        batches = list(BatchLoader(dataset, 32, order, train=False, drop_last=False))
        assert len(batches) == len(expected)
        for (xb, yb), (xe, ye) in zip(batches, expected):
            assert torch.equal(xb.cpu(), xe) and torch.equal(yb.cpu(), ye)
    assert batches[0][0].is_contiguous(memory_format=torch.channels_last)
