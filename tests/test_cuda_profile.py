"""train.cuda, the GPU profile: validated like any section, applied on CUDA only, so CPU training is unchanged."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from components.projects import settings_schemas
from components.settings import SettingsError, TrainSettings, load_project_settings
from components.training.augment import ArrayDataset
from components.training.device_data import BatchAugment, ImageTensorDataset
from components.training.loop import fit
from components.training.tasks import ClassificationTask
from components.training.transfer_estimator import TransferImageClassifier
from tests.test_training import blobs, tiny_cnn
from tests.test_transfer import colour_images

pytestmark = pytest.mark.unit

PROFILED = TrainSettings(
    epochs=3, batch_size=16, lr=0.02, lr_end=1e-3, patience=100, cuda={"batch_size": 64, "lr_scale": 2.0}
)


def test_the_profile_applies_on_cuda_only():
    assert PROFILED.for_device("cpu") is PROFILED
    on_gpu = PROFILED.for_device("cuda")
    assert (on_gpu.batch_size, on_gpu.lr, on_gpu.lr_end, on_gpu.epochs) == (64, 0.04, 2e-3, 3)
    assert on_gpu.cuda is None and on_gpu.patience == PROFILED.patience  # the rest as written
    longer = PROFILED.model_copy(update={"cuda": PROFILED.cuda.model_copy(update={"epoch_scale": 1.5})})
    assert longer.for_device("cuda").epochs == 5  # ceil(3 x 1.5)
    assert TrainSettings(epochs=3).for_device("cuda").epochs == 3  # no profile: as on the CPU


def test_a_profile_in_params_yaml_is_validated_with_its_path(tmp_path):
    def load(cuda):
        return load_project_settings(
            "params.yaml", "face-mask", settings_schemas(), {"train.cuda": cuda, "data_dir": str(tmp_path)}
        )

    assert load({"batch_size": 256}).train.for_device("cuda").batch_size == 256
    with pytest.raises(SettingsError, match=r"projects\.face-mask\.train\.cuda\.batch: unknown key"):
        load({"batch": 256})
    with pytest.raises(SettingsError, match=r"projects\.face-mask\.train\.cuda\.lr_scale"):
        load({"lr_scale": 0})


def test_cpu_training_ignores_the_profile():
    x, y = blobs(32)

    def run(config):
        torch.manual_seed(0)
        data = ArrayDataset(x, y)
        return fit(tiny_cnn(), ClassificationTask(), data, data, config, torch.device("cpu"), progress=False).history

    with_profile, without = run(PROFILED), run(PROFILED.model_copy(update={"cuda": None}))
    assert [r["train_loss"] for r in with_profile] == [r["train_loss"] for r in without]
    assert with_profile[0]["lr"] == without[0]["lr"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cudnn_autotuning_is_off_unless_the_section_asks_for_it():
    # Short runs over many shapes paid more for cuDNN's kernel search than it saved (benchmarks/RESULTS.md).
    x, y = blobs(32)
    data = ArrayDataset(x, y)
    for asked in (False, True, False):
        config = TrainSettings(epochs=1, batch_size=16, cudnn_benchmark=asked)
        fit(tiny_cnn(), ClassificationTask(), data, data, config, torch.device("cuda"), progress=False)
        assert torch.backends.cudnn.benchmark is asked
    assert TrainSettings().cudnn_benchmark is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cudnn_is_switched_off_for_the_process_when_the_section_says_so_and_the_net_still_learns():
    # cuDNN's per-shape host setup was most of a short transfer run's first seconds (RESULTS.md): `cudnn: false`.
    x, y = blobs(64)
    data = ArrayDataset(x, y)
    try:
        for enabled in (False, True):
            torch.manual_seed(0)
            config = TrainSettings(epochs=8, batch_size=16, lr=0.02, patience=100, cudnn=enabled)
            result = fit(tiny_cnn(), ClassificationTask(), data, data, config, torch.device("cuda"), progress=False)
            assert torch.backends.cudnn.enabled is enabled
            assert result.history[-1]["val_accuracy"] > 0.9  # three bright quadrants: chance is 1/3
    finally:
        torch.backends.cudnn.enabled = True


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_transfer_training_on_cuda_augments_whole_batches_on_the_gpu():
    # Per-image torchvision transforms on the host were 46% of face-mask-transfer's warm GPU run (RESULTS.md).
    X, y = colour_images(96)
    X_test, y_test = colour_images(64, seed=1)
    model = SimpleNamespace(backbone="mobilenet_v2", weights="imagenet", download_weights=False, hidden=0, dropout=0.0)
    finetune = SimpleNamespace(layers=0, epochs=0, lr=1e-4, patience=1)
    train = TrainSettings(epochs=6, batch_size=16, lr=1e-2, patience=10)
    clf = TransferImageClassifier(model, train, finetune, device="cuda", progress=False)
    train_set = clf._train_dataset(X, y, *clf._normalization(3))
    assert isinstance(train_set, ImageTensorDataset) and isinstance(train_set.augment, BatchAugment)
    assert (clf.fit(X, y).predict(X_test) == y_test).mean() > 0.9  # 1.0 on the CPU


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_estimators_draw_a_new_networks_weights_on_the_gpu_repeatably():
    from components.models import build_model
    from components.training.estimators import initialised_on

    def built(seed):
        torch.manual_seed(seed)
        with initialised_on(torch.device("cuda")):
            return build_model("mask_cnn", num_classes=2, in_channels=3)

    first, again, other = built(0), built(0), built(1)
    assert all(p.device.type == "cuda" for p in first.parameters())
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(first.parameters(), other.parameters()))
