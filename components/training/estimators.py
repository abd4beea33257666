"""scikit-learn estimators around our torch models, so modAL, MAPIE and sklearn metrics see a plain classifier.

``__init__`` only stores parameters; ``fit`` builds and trains the network and returns ``self``; learned
attributes end in ``_``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from components.models import build_model
from components.training import augment, device_data
from components.training.loop import FitResult, fit, predict_logits, resolve_device
from components.training.tasks import ClassificationTask

if TYPE_CHECKING:  # a type only: training/ imports without pydantic
    from components.settings import TrainSettings


class ModelSection(Protocol):
    """A ``model:`` section as the estimator reads it: a BUILDERS name and its keyword arguments (checked
    against the builder's signature when params.yaml loads: components/projects/image_classification.py)."""

    name: str
    kwargs: Mapping[str, Any]


class _TorchClassifier(ClassifierMixin, BaseEstimator):
    """What the torch classifiers share: labels to class indices and a held-out validation slice, then one
    ``fit`` of the shared loop on the ``train`` section. Subclasses build the network and the datasets."""

    def _labelled(self, X, y, X_val, y_val):
        """(X, y_idx, X_val, y_val_idx) with ``classes_`` set; a stratified ``val_fraction`` of X is held out for
        early stopping when no validation set is given (none when ``val_fraction`` is 0)."""
        X, y = np.asarray(X), np.asarray(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if X_val is None and self.val_fraction > 0:
            return _stratified_holdout(X, y_idx, self.val_fraction, self.seed)
        y_val_idx = None if X_val is None else np.searchsorted(self.classes_, np.asarray(y_val))
        return X, y_idx, X_val, y_val_idx

    def _fit_module(self, task: ClassificationTask, train_set, val_set, on_epoch):
        self.fit_result_: FitResult = fit(
            self.module_,
            task,
            train_set,
            val_set,
            self.train,
            self.device_,
            seed=self.seed,
            on_epoch=on_epoch,
            progress=self.progress,
            checkpoint_dir=Path(self.checkpoint_dir) if self.checkpoint_dir else None,
            resume=True,  # a run killed mid-training continues from its checkpoints
        )
        self.module_.to("cpu")
        return self

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class TorchImageClassifier(_TorchClassifier):
    """Image classifier on uint8 arrays of shape (N, H, W, C).

    ``fit(X, y, X_val=None, y_val=None)`` holds out a stratified slice of X for early stopping when no
    validation set is given; ``val_fraction=0`` trains on all of X for ``train.epochs`` and keeps the last weights.
    ``model`` and ``train`` are the project's validated sections (``settings.model``, ``settings.train``).

    ``prior_l2 = c`` adds ``c / N * sum(W**2)`` over the Linear layers' weights to the loss, N the training
    examples: the Gaussian weight prior of MC dropout as a Bayesian approximation (Gal & Ghahramani 2016),
    which weighs more the fewer labels there are. Gal et al. (2017) used c = 3.5 for active learning.
    """

    def __init__(
        self,
        model: ModelSection,
        train: TrainSettings,
        augmentation: str = "light",
        val_fraction: float = 0.15,
        device: str = "auto",
        seed: int = 0,
        progress: bool = True,
        checkpoint_dir: str | Path | None = None,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        warm_start: bool = False,
        prior_l2: float = 0.0,
    ):
        # The validated sections themselves, not copies of their fields: they are frozen, so scikit-learn's
        # get_params / set_params / clone treat them as plain parameter values.
        self.model = model
        self.train = train
        self.augmentation = augmentation
        self.val_fraction = val_fraction
        self.device = device
        self.seed = seed
        self.progress = progress
        self.checkpoint_dir = checkpoint_dir
        self.mean = mean
        self.std = std
        self.warm_start = warm_start
        self.prior_l2 = prior_l2

    def _normalization(self, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean/std (ImageNet's unless given); one value serves any channel count."""
        mean = tuple(self.mean) if self.mean is not None else augment.IMAGENET_MEAN
        std = tuple(self.std) if self.std is not None else augment.IMAGENET_STD
        for name, values in (("mean", mean), ("std", std)):
            # torchvision would broadcast 3 values over 1 channel and silently make a 3-channel image.
            if len(values) not in (1, channels):
                raise ValueError(
                    f"normalisation {name} has {len(values)} values but the images have {channels} "
                    f"channel(s): give one value per channel, or a single value for all"
                )
        return mean, std

    def __setstate__(self, state: dict) -> None:
        # Estimators pickled before the settings sections (main d432da5 and earlier) held the fields as scalars;
        # a registered version of that time still predicts, reading them as the sections they became.
        if "train" not in state:
            from types import SimpleNamespace

            fields = ("epochs", "batch_size", "lr", "weight_decay", "grad_clip", "schedule", "patience", "amp")
            state["train"] = SimpleNamespace(**{k: state.pop(k) for k in fields if k in state})
            if isinstance(state.get("model"), str):
                state["model"] = SimpleNamespace(name=state["model"], kwargs=state.pop("model_kwargs", None) or {})
            elif "backbone" in state:  # a TransferImageClassifier: what normalization() reads
                state["model"] = SimpleNamespace(backbone=state.pop("backbone"), weights=state.pop("weights", None))
        self.__dict__.update(state)

    def fit(self, X, y, X_val=None, y_val=None, on_epoch=None):
        previous_classes = getattr(self, "classes_", None)
        X, y_idx, X_val, y_val_idx = self._labelled(X, y, X_val, y_val)
        torch.manual_seed(self.seed)
        self.device_ = resolve_device(self.device)
        # warm_start (scikit-learn's meaning): an active-learning round continues from the last round's weights.
        if not (self.warm_start and hasattr(self, "module_") and np.array_equal(previous_classes, self.classes_)):
            with initialised_on(self.device_):
                self.module_ = build_model(
                    self.model.name, num_classes=len(self.classes_), in_channels=X.shape[-1], **self.model.kwargs
                )
        mean, std = self._normalization(X.shape[-1])
        train_set = self._train_dataset(X, y_idx, mean, std)
        val_set = (
            None
            if X_val is None
            else device_data.ImageTensorDataset(X_val, y_val_idx, normalize=device_data.Normalize(mean=mean, std=std))
        )
        return self._fit_module(ClassificationTask(self._loss(len(train_set))), train_set, val_set, on_epoch)

    def _loss(self, n_train: int):
        if not self.prior_l2:
            return torch.nn.functional.cross_entropy
        weights = [m.weight for m in self.module_.modules() if isinstance(m, torch.nn.Linear)]
        scale = self.prior_l2 / n_train

        def loss(logits, y):
            return torch.nn.functional.cross_entropy(logits, y) + scale * sum(w.float().pow(2).sum() for w in weights)

        return loss

    def _train_dataset(self, X, y_idx, mean, std):
        """Whole batches normalised (and augmented) on the device where a batched kernel can do the policy;
        torchvision's per-image transforms otherwise. The batch path is what makes small images fast on a
        GPU: per-image transforms on the host cost more than the model. On the CPU only 'none' takes it, so
        CPU training keeps torchvision's augmentation."""
        on_gpu = resolve_device(self.device).type == "cuda"
        if self.augmentation == "none" or (on_gpu and self.augmentation in augment.BATCHED_POLICIES):
            policy = augment.BATCHED_POLICIES[self.augmentation]
            return device_data.ImageTensorDataset(
                X,
                y_idx,
                augment=None if policy is None else device_data.BatchAugment(mean=mean, std=std, **policy),
                normalize=device_data.Normalize(mean=mean, std=std),
            )
        return augment.ArrayDataset(X, y_idx, augment.train_transform(self.augmentation, mean, std))

    def _batches(self, X, device: torch.device, batch_size: int = 512):
        """Normalised batches of X on ``device``, in order."""
        mean, std = self._normalization(X.shape[-1])
        dataset = device_data.ImageTensorDataset(X, normalize=device_data.Normalize(mean=mean, std=std)).to(device)
        return device_data.BatchLoader(dataset, batch_size, range(len(X)), train=False, drop_last=False)

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "module_")
        X = np.asarray(X)
        device = resolve_device(self.device)
        logits = predict_logits(self.module_, self._batches(X, device), device, amp=self.train.amp)
        self.module_.to("cpu")
        proba = torch.softmax(logits.double(), dim=1).numpy()
        return proba / proba.sum(axis=1, keepdims=True)  # exact sums: MAPIE and sklearn check them

    @torch.no_grad()
    def predict_proba_samples(self, X, n_samples: int = 20) -> np.ndarray:
        """MC dropout: class probabilities from ``n_samples`` passes with dropout on, shape (T, N, classes).

        BatchNorm stays in eval mode, so only dropout varies between passes; the seed makes the draws repeatable.
        """
        check_is_fitted(self, "module_")
        X = np.asarray(X)
        device = resolve_device(self.device)
        model = self.module_.to(device).eval()
        for layer in model.modules():
            if isinstance(layer, torch.nn.modules.dropout._DropoutNd):
                layer.train()
        # T passes of one batch in a single forward call: T x batch images, so shrink the batch as T grows.
        loader = self._batches(X, device, batch_size=max(1, 2048 // n_samples))
        out = []
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            for (x,) in loader:
                x = x.to(device, non_blocking=True)
                repeated = x.unsqueeze(0).expand(n_samples, *x.shape).reshape(-1, *x.shape[1:])
                logits = model(repeated).float().view(n_samples, len(x), -1)
                out.append(torch.softmax(logits.double(), dim=-1).cpu())
        model.eval().to("cpu")
        proba = torch.cat(out, dim=1).numpy()
        return proba / proba.sum(axis=-1, keepdims=True)


class TorchTensorClassifier(_TorchClassifier):
    """Classifier on fixed-shape array inputs (token-id rows, feature vectors) whose network ``builder(n_classes)``
    makes: the shared training loop on the project's ``train`` section, as TorchImageClassifier is for images.

    ``builder`` is a callable that compares equal to its deep copy (scikit-learn's clone copies it), for example
    components/models/emojify.py's EmojiNetBuilder. ``dtype`` is what the rows become (``long`` for token ids).
    ``fit(X, y, X_val=None, y_val=None)`` holds out a stratified ``val_fraction`` for early stopping when no
    validation set is given; ``val_fraction=0`` trains on every row for ``train.epochs`` and keeps the last weights.
    """

    def __init__(
        self,
        builder: Any,
        train: TrainSettings,
        dtype: str = "long",
        val_fraction: float = 0.15,
        device: str = "auto",
        seed: int = 0,
        progress: bool = True,
        checkpoint_dir: str | Path | None = None,
    ):
        self.builder = builder
        self.train = train
        self.dtype = dtype
        self.val_fraction = val_fraction
        self.device = device
        self.seed = seed
        self.progress = progress
        self.checkpoint_dir = checkpoint_dir

    def _tensor(self, X) -> torch.Tensor:
        return torch.as_tensor(np.asarray(X), dtype=getattr(torch, self.dtype))

    def fit(self, X, y, X_val=None, y_val=None, on_epoch=None):
        X, y_idx, X_val, y_val_idx = self._labelled(X, y, X_val, y_val)
        torch.manual_seed(self.seed)
        self.device_ = resolve_device(self.device)
        with initialised_on(self.device_):
            self.module_ = self.builder(len(self.classes_))
        train_set = torch.utils.data.TensorDataset(self._tensor(X), torch.as_tensor(y_idx, dtype=torch.long))
        val_set = (
            None
            if X_val is None
            else torch.utils.data.TensorDataset(self._tensor(X_val), torch.as_tensor(y_val_idx, dtype=torch.long))
        )
        return self._fit_module(ClassificationTask(), train_set, val_set, on_epoch)

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "module_")
        device = resolve_device(self.device)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(self._tensor(X)), batch_size=512)
        logits = predict_logits(self.module_, loader, device, amp=self.train.amp)
        self.module_.to("cpu")
        proba = torch.softmax(logits.double(), dim=1).numpy()
        return proba / proba.sum(axis=1, keepdims=True)


def initialised_on(device: torch.device):
    """Where a new network is built: on a GPU, there, so its initial weights are drawn by GPU kernels (seeded by
    ``torch.manual_seed`` like the CPU's). A CPU draws VGG16's 138M initial weights in about a second, and a
    pipeline stage builds one network per comparison arm; on the CPU nothing changes."""
    return torch.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _stratified_holdout(X, y, fraction, seed):
    rng = np.random.default_rng(seed)
    val = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        take = max(1, int(round(fraction * len(idx))))
        val[rng.choice(idx, size=take, replace=False)] = True
    return X[~val], y[~val], X[val], y[val]
