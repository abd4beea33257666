"""Metric learning for the one loop (``components.training.loop.fit``): the triplet loss on P x K batches.

A batch holds P identities with K images each (``identity_batches``), so every image has K - 1 positives and
(P - 1) K negatives in the batch; ``components.models.facenet.triplet_loss`` mines a semi-hard negative for every
(anchor, positive) pair. Validation embeds the validation identities (people the net never trains on) and
scores their balanced pairs: the ROC-AUC of "same when close" is what early stopping watches (max).

    fit(FaceNet(), TripletTask(images_per_identity=4, margin=0.2), (X_train, y_train), (X_val, y_val), ...)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from components.metrics.verification import balanced_pairs, roc_auc
from components.models.facenet import triplet_loss
from components.training.tasks import DrawnBatches


def as_input(images: np.ndarray) -> torch.Tensor:
    """uint8 images (N, H, W, C) -> float32 (N, C, H, W) in [0, 1]."""
    return torch.as_tensor(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)


def identity_batches(
    labels: np.ndarray, identities_per_batch: int, images_per_identity: int, generator: torch.Generator
) -> list[np.ndarray]:
    """One epoch of P x K batches of indices: the identities in a fresh random order, P at a time, each with K of
    its images drawn without repeats (all of them where it has fewer). Identities with a single image cannot
    make a positive pair and are left out."""
    labels = np.asarray(labels)
    members = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    members = [m for m in members if len(m) >= 2]
    order = torch.randperm(len(members), generator=generator).numpy()
    batches = []
    for start in range(0, len(order) - identities_per_batch + 1, identities_per_batch):
        batch = []
        for identity in order[start : start + identities_per_batch]:
            m = members[identity]
            batch.append(m[torch.randperm(len(m), generator=generator)[:images_per_identity].numpy()])
        batches.append(np.concatenate(batch))
    return batches


class TripletTask:
    """Triplet loss with online semi-hard mining on P x K batches (P = batch_size / K); with ``flip`` a random
    half of each batch mirrored. ``repeats`` passes over the identities make one epoch (each pass draws other
    images of them). Validation: the triplet loss of the whole validation set as one batch and the ROC-AUC of
    its balanced pairs, which it monitors."""

    monitor, mode, metric_names = "val_auc", "max", ("val_loss", "val_auc", "val_active_triplets")

    def __init__(self, images_per_identity: int, margin: float = 0.2, flip: bool = True, repeats: int = 1):
        self.k, self.margin, self.flip, self.repeats = images_per_identity, margin, flip, repeats

    def train_batches(self, data: tuple[np.ndarray, np.ndarray], batch_size, runtime, *, seed, generator):
        X, labels = as_input(data[0]), np.asarray(data[1])
        p = max(2, batch_size // self.k)
        steps = self.repeats * max(1, len(np.unique(labels)) // p)

        def draw():
            for _ in range(self.repeats):
                for idx in identity_batches(labels, p, self.k, generator):
                    x = X[idx]
                    if self.flip:
                        flip = torch.rand(len(idx), generator=generator) < 0.5
                        x[flip] = x[flip].flip(-1)
                    yield x, torch.as_tensor(labels[idx])

        return DrawnBatches(draw, steps, runtime)

    def validation_data(self, data, batch_size, runtime):
        X, labels = data
        return as_input(X), np.asarray(labels), balanced_pairs(labels, seed=0)

    def loss(self, model: nn.Module, batch):
        x, labels = batch
        loss, _ = triplet_loss(model(x).float(), labels, self.margin)
        return loss, 1

    def validate(self, model, data, runtime):
        X, labels, (i, j, same) = data
        embeddings = torch.cat([model(X[s : s + 256].to(runtime.device)).float() for s in range(0, len(X), 256)])
        loss, mined = triplet_loss(embeddings, torch.as_tensor(labels, device=runtime.device), self.margin)
        e = embeddings.cpu().numpy().astype(np.float64)
        distances = ((e[i] - e[j]) ** 2).sum(1)
        return {
            "val_loss": float(loss),
            "val_auc": roc_auc(distances, same),
            "val_active_triplets": float(mined["active"]),
        }
