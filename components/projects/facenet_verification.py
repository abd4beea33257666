"""facenet-verification: an Inception-style net embeds faces in 128-d; same person = close [seed 003, FaceNet].

Real format: one folder of images per person, ``<data_dir>/<identity>/*.png|jpg`` (at least two images each:
``components/data/formats/identity_folders.py``). Offline sample: GENERATED people, the facial-keypoints face
generator with identity = its face proportions and pose, light, background and noise varying per image
(``components/data/samples/face_identities.py``). The IDENTITIES are split into train, validation and test, so
the test people are never seen in training. Trained with the triplet loss, semi-hard negatives mined online in
P x K batches (``components/training/triplet.py``), on the shared trainer.

Judged on the test identities' balanced pairs (every same-person pair, as many different-person pairs):
verification accuracy at the threshold tuned on the validation identities' pairs, ROC-AUC, TAR at FAR
``verification.far``; and recognition: one image of each test person enrolled, the others matched to the nearest
(rank-1). Beside it, the same measured with raw pixels (the L2 distance of the images themselves, threshold
tuned the same way) and chance (0.5; one over the people for recognition).

Second arm (``compare_dlib``): dlib's pretrained 128-d face encoder (components/pretrained/dlib_faces.py), never
trained on our data. (a) On REAL photos, ``compare_dlib.real_photos`` (face-recognition 1.3.0's six photos of two
people, written by ``make setup``): every pair's distance for dlib (Euclidean, same person below dlib's 0.6) and
for the project's own net (fed a grey square around dlib's face box, as its training images are grey faces), and
the accuracy of each at its threshold (dlib's 0.6; the net's, tuned on the generated validation people).
(b) With ``compare_dlib.test_identities``, the same metrics as the net's on the generated test people's pairs
(threshold tuned on the validation people's pairs), prefixed ``dlib_``, and dlib's curve in the ROC plot.

Served model: a frame with ``image_a`` and ``image_b`` (base64 image files, or uint8 arrays) -> ``distance`` (the
squared distance of the embeddings), ``same`` (distance <= the tuned threshold) and ``identity`` (""). A row
without ``image_b`` is matched against the database of enrolled test people instead: ``identity`` is the nearest
one, or "unknown" when even that one is farther than the threshold.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from components.data.formats import identity_folders as faces
from components.data.samples import face_identities as face_sample
from components.data.splits import random_split
from components.evaluation.plots import Panel, roc_figure, training_curves
from components.evaluation.report import Report
from components.metrics import verification as vm
from components.projects.base import Project, Trained, train_torch
from components.projects.settings.facenet_verification import CAPABILITIES, FaceNetVerificationSettings
from components.serving.inputs import as_frame, decode_image, encode_png, is_missing, resize_images
from components.serving.predictor import Predictor
from components.validation.expectations import ValidationReport


@dataclass
class IdentitySplits:
    names: tuple[str, ...]  # identity folder names; labels index them
    X_train: np.ndarray  # uint8 (N, F, F, 3) at data.frame_size: the net sees their centre crop
    y_train: np.ndarray  # identity index (N,)
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {
            "train_images": len(self.X_train),
            "val_images": len(self.X_val),
            "test_images": len(self.X_test),
            "train_identities": len(np.unique(self.y_train)),
            "val_identities": len(np.unique(self.y_val)),
            "test_identities": len(np.unique(self.y_test)),
        }


def network(settings: FaceNetVerificationSettings):
    """The net with initial weights drawn from the settings' seed (fit() seeds torch only once the net exists)."""
    import torch

    from components.models.facenet import FaceNet

    torch.manual_seed(settings.seed)
    m = settings.model
    return FaceNet(3, m.stem, m.blocks, m.embedding_dim, m.dropout)


def centre_crop(images: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` of each image (N, H, W, C)."""
    top, left = (images.shape[1] - size) // 2, (images.shape[2] - size) // 2
    return images[:, top : top + size, left : left + size]


class FacePredictor(Predictor):
    """Served model: ``image_a`` / ``image_b`` -> ``distance``, ``same``, ``identity`` (see the module docstring).
    Runs on the CPU in float32; images of any size are resized to ``frame_size`` and centre-cropped to
    ``image_size``, as in training."""

    def __init__(self, net, image_size: int, frame_size: int, threshold: float, database: dict[str, np.ndarray]):
        self.net = copy.deepcopy(net).cpu().eval()
        self.image_size, self.frame_size, self.threshold = image_size, frame_size, float(threshold)
        self.database_names = list(database)
        self.database = np.stack(list(database.values())) if database else np.zeros((0, net.embedding_dim))

    def embed(self, images) -> np.ndarray:
        """(N, D) float32 unit embeddings of uint8 images (a batch array or a list of any sizes)."""
        import torch

        from components.training.triplet import as_input

        batch = centre_crop(resize_images(list(images), self.frame_size), self.image_size)
        with torch.no_grad():
            return np.concatenate(
                [self.net(as_input(batch[s : s + 256])).numpy() for s in range(0, len(batch), 256)]
            ).astype(np.float32)

    @staticmethod
    def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Row-wise squared distances of two (N, D) embedding arrays (float64)."""
        return ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).sum(1)

    def predict_frame(self, inputs) -> pd.DataFrame:
        frame = as_frame(inputs, {"image_a": "a base64 image file or a uint8 array"})
        a = self.embed([decode_image(v) for v in frame["image_a"]])
        b_cells = frame["image_b"] if "image_b" in frame else [None] * len(frame)
        paired = np.array([not is_missing(v) and not (isinstance(v, str) and not v) for v in b_cells], dtype=bool)
        distance = np.full(len(frame), np.nan)
        identity = [""] * len(frame)
        if paired.any():
            b = self.embed([decode_image(v) for v, p in zip(b_cells, paired) if p])
            distance[paired] = self.distances(a[paired], b)
        if (~paired).any():
            if not len(self.database):
                raise ValueError("a row without image_b is matched against the database, which is empty")
            to_db = vm.squared_distances(a[~paired], self.database)
            nearest = to_db.argmin(1)
            distance[~paired] = to_db[np.arange(len(nearest)), nearest]
            for row, k, d in zip(np.flatnonzero(~paired), nearest, distance[~paired]):
                identity[row] = self.database_names[k] if d <= self.threshold else "unknown"
        return pd.DataFrame({"distance": distance, "same": distance <= self.threshold, "identity": identity})


def raw_pixels(size: int):
    """The baseline's "embedding": the image itself (centre-cropped as the net sees it), flattened, in [0, 1]."""
    return lambda images: centre_crop(images, size).reshape(len(images), -1).astype(np.float64) / 255


def verification(embed, data: IdentitySplits, settings: FaceNetVerificationSettings, distances=None) -> dict:
    """Threshold tuned on the validation pairs, metrics on the test pairs, recognition on the test people."""
    distances = distances or (lambda a, b: ((a - b) ** 2).sum(1))
    seed = settings.verification.pair_seed
    e_val, e_test = embed(data.X_val), embed(data.X_test)
    i, j, same = vm.balanced_pairs(data.y_val, seed)
    threshold = vm.best_threshold(distances(e_val[i], e_val[j]), same)
    i, j, same = vm.balanced_pairs(data.y_test, seed)
    d = distances(e_test[i], e_test[j])
    metrics = vm.verification_metrics(d, same, threshold, settings.verification.far)
    metrics.update(threshold=threshold, recognition_accuracy=vm.recognition_accuracy(e_test, data.y_test))
    return {"metrics": metrics, "distances": d, "same": same}


def repository_path(path: str) -> Path:
    """``path`` as given when absolute, else relative to the repository this code is in (where `make setup`
    writes what it fetches)."""
    return Path(path) if Path(path).is_absolute() else Path(__file__).resolve().parents[2] / path


def read_photos(root: Path, max_side: int) -> tuple[list[np.ndarray], list[str], list[str]]:
    """The RGB images of ``root/<person>/*.jpg|jpeg|png`` shrunk to at most ``max_side``, their person and file."""
    from PIL import Image

    images, people, files = [], [], []
    paths = sorted(p for p in root.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len({p.parent.name for p in paths}) < 2:
        raise FileNotFoundError(
            f"{root}: no photos of two people or more (run `make setup`, which writes face-recognition 1.3.0's six "
            "real photos there, or set compare_dlib.real_photos: null)"
        )
    for path in paths:
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = max_side / max(im.size)
            if scale < 1:
                im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BILINEAR)
            images.append(np.asarray(im))
        people.append(path.parent.name)
        files.append(f"{path.parent.name}/{path.name}")
    return images, people, files


def real_photo_comparison(
    predictor: FacePredictor, settings: FaceNetVerificationSettings
) -> tuple[dict, dict, pd.DataFrame]:
    """dlib and the net on every pair of the real photos: metrics, the figure, a table of the pairs."""
    from components.pretrained import dlib_faces

    arm = settings.compare_dlib
    images, people, files = read_photos(repository_path(arm.real_photos), arm.max_side)
    boxes = [dlib_faces.detect(im, arm.upsample) for im in images]
    whole = [dlib_faces.Box(0, 0, im.shape[1], im.shape[0]) for im in images]
    boxes_or_whole = [b or w for b, w in zip(boxes, whole)]
    dlib_e, _ = dlib_faces.encode(images, boxes_or_whole)
    faces = [dlib_faces.square_crop(im, b, arm.net_crop) for im, b in zip(images, boxes_or_whole)]
    grey = [np.repeat(np.round(f @ [0.299, 0.587, 0.114]).astype(np.uint8)[..., None], 3, axis=2) for f in faces]
    net_e = predictor.embed(grey)
    i, j = np.triu_indices(len(images), 1)
    same = np.array([people[a] == people[b] for a, b in zip(i, j)])
    d_dlib = dlib_faces.euclidean(dlib_e[i], dlib_e[j])
    d_net = predictor.distances(net_e[i], net_e[j])
    metrics = {"real_photos": float(len(images)), "real_faces_detected": float(sum(b is not None for b in boxes))}
    metrics |= {"real_pairs_same": float(same.sum()), "real_pairs_different": float((~same).sum())}
    for who, d, threshold in (
        ("dlib_real", d_dlib, dlib_faces.SAME_PERSON_BELOW),
        ("net_real", d_net, predictor.threshold),
    ):
        metrics |= {
            f"{who}_same_mean": float(d[same].mean()),
            f"{who}_same_max": float(d[same].max()),
            f"{who}_different_mean": float(d[~same].mean()),
            f"{who}_different_min": float(d[~same].min()),
            f"{who}_threshold": float(threshold),
            f"{who}_accuracy": float(((d <= threshold) == same).mean()),
            f"{who}_roc_auc": vm.roc_auc(d, same),
        }
    pairs = pd.DataFrame(
        {"a": [files[k] for k in i], "b": [files[k] for k in j], "same": same, "dlib": d_dlib, "net": d_net}
    )
    return metrics, real_photos_figure(grey, people, pairs, metrics), pairs


def real_photos_figure(faces: list[np.ndarray], people: list[str], pairs: pd.DataFrame, m: dict) -> plt.Figure:
    """The photos' face crops (what the net sees) and both distance matrices."""
    n = len(faces)
    fig = plt.figure(figsize=(max(8, 1.4 * n), 6))
    grid = fig.add_gridspec(2, max(n, 2), height_ratios=(1, 2.4))
    for k, face in enumerate(faces):
        ax = fig.add_subplot(grid[0, k])
        ax.imshow(face)
        ax.set_title(f"{k}: {people[k]}", fontsize=8)
        ax.axis("off")
    half = max(n, 2) // 2
    for col, (who, label) in enumerate((("dlib", "dlib ResNet (Euclidean)"), ("net", "own net (squared)"))):
        matrix = np.zeros((n, n))
        i, j = np.triu_indices(n, 1)  # the pairs' order
        matrix[i, j] = matrix[j, i] = pairs[who].to_numpy()
        ax = fig.add_subplot(grid[1, col * half : (col + 1) * half])
        ax.imshow(matrix, cmap="viridis")
        for (a, b), v in np.ndenumerate(matrix):
            if a != b:
                ax.text(b, a, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w")
        prefix = "dlib_real" if who == "dlib" else "net_real"
        ax.set_title(f"{label}: accuracy {m[prefix + '_accuracy']:.2f} at {m[prefix + '_threshold']:.2f}", fontsize=9)
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
    fig.suptitle("Real photos (face-recognition 1.3.0 test images): pair distances", fontsize=10)
    fig.tight_layout()
    return fig


def dlib_verification(data: IdentitySplits, settings: FaceNetVerificationSettings) -> dict:
    """``verification`` with dlib's descriptors of the whole frames (its detector needs the context a centre crop
    cuts off; where it finds no face the frame is the box), plus the share of faces found and dlib's own 0.6 rule."""
    from components.pretrained import dlib_faces

    found = []

    def embed(images):
        e, f = dlib_faces.encode(images, upsample=settings.compare_dlib.upsample)
        found.append(f)
        return e

    out = verification(embed, data, settings, dlib_faces.euclidean)
    out["metrics"]["faces_detected"] = float(np.concatenate(found).mean())
    out["metrics"]["accuracy_at_0.6"] = float(
        ((out["distances"] <= dlib_faces.SAME_PERSON_BELOW) == out["same"]).mean()
    )
    return out


LOSS_CURVES = (
    Panel({"train_loss": "train", "val_loss": "validation"}, "triplet loss (semi-hard)", "Loss"),
    Panel({"val_auc": None}, "ROC-AUC of validation pairs", "Validation ROC-AUC", ylim=(0.4, 1.0)),
)


def distance_figure(net: dict, threshold: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.linspace(0, max(4.0, float(net["distances"].max())), 50)
    ax.hist(net["distances"][net["same"]], bins, alpha=0.6, label="same person")
    ax.hist(net["distances"][~net["same"]], bins, alpha=0.6, label="different people")
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.3f} (validation)")
    ax.set(xlabel="squared embedding distance", ylabel="test pairs", title="Test pair distances")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def examples_figure(data: IdentitySplits, embed, threshold: float, n: int, seed: int) -> plt.Figure:
    """``n`` same-person and ``n`` different-person test pairs with their distance and the decision."""
    i, j, same = vm.balanced_pairs(data.y_test, seed)
    rng = np.random.default_rng(seed)
    n = min(n, int(same.sum()), int((~same).sum()))
    rows = np.concatenate([rng.choice(np.flatnonzero(same), n, False), rng.choice(np.flatnonzero(~same), n, False)])
    e = embed(data.X_test)
    fig, axes = plt.subplots(2, 2 * n, figsize=(1.3 * 2 * n, 3.2), squeeze=False)
    for col, r in enumerate(rows):
        d = float(((e[i[r]] - e[j[r]]) ** 2).sum())
        for row, k in enumerate((i[r], j[r])):
            axes[row, col].imshow(data.X_test[k])
            axes[row, col].axis("off")
        right = (d <= threshold) == same[r]
        axes[0, col].set_title(
            f"{'same' if same[r] else 'diff'} d={d:.2f}", fontsize=7, color="green" if right else "red"
        )
    fig.suptitle("Test pairs: distance, decision right (green) or wrong (red)", fontsize=9)
    fig.tight_layout()
    return fig


class FaceNetVerification(Project):
    name = "facenet-verification"
    capabilities = CAPABILITIES
    summary = "Inception-style 128-d face embedding, triplet loss with semi-hard mining; verification and recognition"
    primary_metric = "verification_accuracy"
    Settings = FaceNetVerificationSettings

    def make_sample(self, out_dir: Path, tiny: bool = False) -> dict:
        return face_sample.generate(out_dir, identities=16, images=4) if tiny else face_sample.generate(out_dir)

    def rules(self, settings: FaceNetVerificationSettings) -> faces.IdentityRules:
        d = settings.data
        return faces.IdentityRules(d.min_size, d.max_size, d.min_images, d.min_identities)

    def validate(self, settings: FaceNetVerificationSettings) -> ValidationReport:
        report, _ = faces.validate_identity_folder(settings.data_dir, self.rules(settings))
        return report

    def prepare(self, settings: FaceNetVerificationSettings) -> IdentitySplits:
        X, y, names, _ = faces.load_identities(settings.data_dir, settings.data.frame_size)
        parts = random_split(len(names), {"test": settings.split.test, "val": settings.split.val}, settings.seed)
        pick = {part: np.isin(y, ids) for part, ids in parts.items()}
        return IdentitySplits(
            names,
            X[pick["train"]],
            y[pick["train"]],
            X[pick["val"]],
            y[pick["val"]],
            X[pick["test"]],
            y[pick["test"]],
        )

    def train(
        self, data: IdentitySplits, settings: FaceNetVerificationSettings, *, on_epoch, checkpoint_dir: Path
    ) -> Trained:
        from components.training.triplet import TripletTask

        net = network(settings)
        t = settings.triplet
        return train_torch(
            net,
            TripletTask(t.images_per_identity, t.margin, flip=t.flip, repeats=t.repeats),
            (centre_crop(data.X_train, settings.data.image_size), data.y_train),
            (centre_crop(data.X_val, settings.data.image_size), data.y_val),
            settings,
            on_epoch=on_epoch,
            checkpoint_dir=checkpoint_dir,
            **data.sizes(),
        )

    def served(self, trained: Trained, data: IdentitySplits, settings: FaceNetVerificationSettings) -> FacePredictor:
        """The predictor with the threshold tuned on the validation pairs and the test people enrolled."""
        d = settings.data
        probe = FacePredictor(trained.model, d.image_size, d.frame_size, 0.0, {})
        net = verification(probe.embed, data, settings, probe.distances)
        enrolled, _ = vm.enrolment(data.y_test)
        database = dict(zip((data.names[k] for k in data.y_test[enrolled]), probe.embed(data.X_test[enrolled])))
        return FacePredictor(trained.model, d.image_size, d.frame_size, net["metrics"]["threshold"], database)

    def evaluate(self, trained: Trained, data: IdentitySplits, settings: FaceNetVerificationSettings) -> Report:
        predictor = self.served(trained, data, settings)
        net = verification(predictor.embed, data, settings, predictor.distances)
        raw = verification(raw_pixels(settings.data.image_size), data, settings)
        far = settings.verification.far
        m, b = net["metrics"], raw["metrics"]
        metrics = {
            "verification_accuracy": m["accuracy"],
            "roc_auc": m["roc_auc"],
            "tar_at_far": m["tar_at_far"],
            "far_target": far,
            "far_at_threshold": m["far_at_threshold"],
            "tar_at_threshold": m["tar_at_threshold"],
            "threshold": m["threshold"],
            "recognition_accuracy": m["recognition_accuracy"],
            "baseline_verification_accuracy": b["accuracy"],
            "baseline_roc_auc": b["roc_auc"],
            "baseline_tar_at_far": b["tar_at_far"],
            "baseline_recognition_accuracy": b["recognition_accuracy"],
            "chance_verification_accuracy": 0.5,
            "chance_recognition_accuracy": 1 / len(np.unique(data.y_test)),
            "test_pairs": float(len(net["same"])),
            "test_negative_pairs": float((~net["same"]).sum()),
        }
        fpr, tpr, _ = vm.roc_curve(net["distances"], net["same"])
        raw_fpr, raw_tpr, _ = vm.roc_curve(raw["distances"], raw["same"])
        baselines = {"raw-pixel L2": (raw_fpr, raw_tpr, b["roc_auc"])}
        roc_rows = [
            pd.DataFrame({"model": "facenet", "fpr": fpr, "tpr": tpr}),
            pd.DataFrame({"model": "raw_pixels", "fpr": raw_fpr, "tpr": raw_tpr}),
        ]
        figures, tables = {}, {}
        arm = settings.compare_dlib
        if arm.test_identities:
            started = time.perf_counter()
            dlib = dlib_verification(data, settings)
            dm = dlib["metrics"]
            metrics["dlib_verification_accuracy"] = dm["accuracy"]  # named like the net's
            metrics |= {
                f"dlib_{k}": float(dm[k])
                for k in (
                    "roc_auc",
                    "tar_at_far",
                    "threshold",
                    "recognition_accuracy",
                    "faces_detected",
                    "accuracy_at_0.6",
                )
            }
            metrics["dlib_seconds"] = time.perf_counter() - started
            d_fpr, d_tpr, _ = vm.roc_curve(dlib["distances"], dlib["same"])
            baselines["dlib ResNet (pretrained)"] = (d_fpr, d_tpr, dm["roc_auc"])
            roc_rows.append(pd.DataFrame({"model": "dlib", "fpr": d_fpr, "tpr": d_tpr}))
        if arm.real_photos is not None:
            started = time.perf_counter()
            real, figures["real_photos"], tables["real_photo_pairs"] = real_photo_comparison(predictor, settings)
            metrics |= real | {"real_photos_seconds": time.perf_counter() - started}
        roc = roc_figure(
            fpr,
            tpr,
            m["roc_auc"],
            positive="same person",
            label="FaceNet",
            baselines=baselines,
            title=f"ROC, test identities (TAR {m['tar_at_far']:.2f} at FAR {far:g})",
        )
        figures |= {
            "loss_curve": training_curves(trained.history, LOSS_CURVES, marker="o"),
            "roc_curve": roc,
            "test_distances": distance_figure(net, m["threshold"]),
            "test_pairs": examples_figure(
                data, predictor.embed, m["threshold"], settings.examples, settings.verification.pair_seed
            ),
        }
        roc_table = pd.concat(roc_rows, ignore_index=True)
        return Report(metrics, figures, {"history": trained.history, "roc": roc_table, **tables})

    def score(self, model, data: IdentitySplits, settings: FaceNetVerificationSettings) -> dict[str, float]:
        """Verification accuracy, ROC-AUC and TAR at FAR recomputed from a served model's ``distance`` and ``same``
        on the test pairs (the threshold is the one the served model carries)."""
        i, j, same = vm.balanced_pairs(data.y_test, settings.verification.pair_seed)
        images = [encode_png(x) for x in data.X_test]
        frame = model.predict(pd.DataFrame({"image_a": [images[k] for k in i], "image_b": [images[k] for k in j]}))
        d, decided = frame["distance"].to_numpy(dtype=np.float64), frame["same"].to_numpy(dtype=bool)
        fpr, tpr, _ = vm.roc_curve(d, same)
        return {
            "verification_accuracy": float((decided == same).mean()),
            "roc_auc": vm.roc_auc(d, same),
            "tar_at_far": float(tpr[fpr <= settings.verification.far].max()),
        }

    def predictor(self, trained: Trained, data: IdentitySplits, settings: FaceNetVerificationSettings):
        images = [encode_png(x) for x in data.X_test[:3]]
        example = pd.DataFrame({"image_a": images[:2], "image_b": [images[1], images[2]]})
        return self.served(trained, data, settings), example
