"""facial-keypoints: a small CNN with dropout locates 15 facial keypoints on 96x96 grey faces [seed 000].

Real format: Kaggle's "Facial Keypoints Detection" ``training.csv`` (or its ``training.zip``): 30 coordinate
columns and ``Image``, many rows with only four keypoints (``components/data/formats/facial_keypoints.py``). Offline
sample: generated faces drawn on crops of scikit-image's real photos, keypoints exact by construction
(``facial_keypoints_sample.py``). The loss is a masked MSE, so the partly labelled rows train too; flips mirror
the keypoints with the image; the optimizer is SGD with Nesterov momentum on Nouri's schedule (learning rate
down, momentum up, linearly over the epochs) or AdamW. Judged by the RMSE in pixels on the test split against
predicting each keypoint's mean training position; split-conformal intervals per coordinate come from the shared
conformal stage (MAPIE, components/conformal/) on a calibration split that neither trains nor early-stops the net. Optional specialists: a copy of the net per
keypoint group (e.g. eyes, mouth), trained on that group's columns alone and compared as child runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from components.data.formats import facial_keypoints as fk
from components.data.samples import facial_keypoints as facial_keypoints_sample
from components.data.splits import random_split
from components.evaluation.plots import Panel, training_curves
from components.evaluation.report import ChildRun, Report
from components.models.keypoint_cnn import KeypointCNN
from components.models.params import count_parameters
from components.projects.base import Project, Trained
from components.projects.settings.facial_keypoints import CAPABILITIES, FacialKeypointsSettings
from components.serving.conformal import ServesConformal
from components.serving.inputs import as_image_batch, as_text_list
from components.settings import SettingsError
from components.training.keypoints import masked_rmse, predict_pixels
from components.validation.expectations import ValidationReport


@dataclass
class KeypointSplits:
    X_train: np.ndarray  # uint8 (N, 96, 96)
    Y_train: np.ndarray  # float (N, 30) pixels, NaN where missing
    X_val: np.ndarray
    Y_val: np.ndarray
    X_cal: np.ndarray
    Y_cal: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray

    # the names the conformal stage reads: targets (n, 30), NaN where a keypoint is missing
    y_cal = property(lambda self: self.Y_cal)
    y_test = property(lambda self: self.Y_test)

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.X_train),
            "val": len(self.X_val),
            "calibration": len(self.X_cal),
            "test": len(self.X_test),
        }


def group_columns(keypoints: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Coordinate columns of these keypoints and their mirror map within the group (a group must hold the
    partner of each of its left/right keypoints, else a flip would send a point out of the group)."""
    index = [fk.KEYPOINTS.index(k) for k in keypoints]
    mirror_all = fk.mirrored_keypoint_order()
    missing = [fk.KEYPOINTS[mirror_all[i]] for i in index if mirror_all[i] not in index]
    if missing:
        raise ValueError(f"keypoint group {list(keypoints)} lacks the mirror partners {missing}")
    mirror = np.array([index.index(mirror_all[i]) for i in index])
    return np.array([2 * i + axis for i in index for axis in (0, 1)]), mirror


@dataclass
class KeypointModel:
    """The trained net and the optional specialist nets; ``predict`` is what the conformal stage calibrates."""

    net: object
    specialists: dict[str, tuple[object, np.ndarray]] = field(default_factory=dict)  # name -> (net, columns)

    def predict(self, X) -> np.ndarray:
        return predict_pixels(self.net, X)


class KeypointPredictor(ServesConformal):
    """Served model: Kaggle's ``Image`` strings (a DataFrame with an ``Image`` column, or a list) or uint8
    arrays (N, 96, 96) -> the 30 coordinate columns in pixels; with the conformal calibrator attached
    (``with_conformal``) then ``<column>_lower`` / ``<column>_upper``, the conformal interval of each, and the
    batch's drift warning. Runs on the CPU."""

    half_widths = None  # versions registered before the shared conformal stage carry their own half-widths

    def __init__(self, model: KeypointModel):
        self.net = copy.deepcopy(model.net).cpu().eval()

    @staticmethod
    def images(inputs) -> np.ndarray:
        if isinstance(inputs, (pd.DataFrame, str)) or (len(inputs) and isinstance(inputs[0], str)):
            parsed = [fk.parse_image(s) for s in as_text_list(inputs, "Image")]
            bad = [i for i, x in enumerate(parsed) if x is None or len(x) != fk.SIZE**2]
            if bad:
                raise ValueError(f"Image rows {bad[:5]} are not {fk.SIZE**2} space-separated integers")
            return np.stack(parsed).clip(0, 255).astype(np.uint8).reshape(-1, fk.SIZE, fk.SIZE)
        return as_image_batch(inputs, fk.SIZE, channels=None)

    def predict_frame(self, inputs) -> pd.DataFrame:
        predicted = predict_pixels(self.net, self.images(inputs))
        frame = pd.DataFrame(predicted, columns=list(fk.COORDINATES))
        if self.conformal is not None:
            return self.add_intervals(frame, None, fk.COORDINATES, predicted=predicted)
        if self.half_widths is not None:  # an old version's private calibration
            for j, column in enumerate(fk.COORDINATES):
                frame[f"{column}_lower"] = predicted[:, j] - self.half_widths[j]
                frame[f"{column}_upper"] = predicted[:, j] + self.half_widths[j]
        return frame


def rmse_metrics(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """RMSE in pixels over the present coordinates, and per keypoint (x and y together)."""
    metrics = {"rmse": masked_rmse(predicted, truth)}
    for k, name in enumerate(fk.KEYPOINTS):
        cols = slice(2 * k, 2 * k + 2)
        if (~np.isnan(truth[:, cols])).any():
            metrics[f"rmse_{name}"] = masked_rmse(predicted[:, cols], truth[:, cols])
    return metrics


def interval_metrics(frame: pd.DataFrame, truth: np.ndarray) -> dict[str, float]:
    lower = frame[[f"{c}_lower" for c in fk.COORDINATES]].to_numpy()
    upper = frame[[f"{c}_upper" for c in fk.COORDINATES]].to_numpy()
    present = ~np.isnan(truth)
    covered = (truth >= lower) & (truth <= upper)
    return {
        "interval_coverage": float(covered[present].mean()),
        "interval_mean_width": float((upper - lower)[present].mean()),
    }


LEARNING_CURVES = (
    Panel({"train_rmse": "train (with dropout)", "val_rmse": "validation"}, "RMSE (pixels)", "Learning curves"),
    Panel({"lr": "learning rate"}, "learning rate", "Schedule"),
)


def curves_figure(history: pd.DataFrame) -> plt.Figure:
    # The loss is an MSE in units of 48 px (half the image): sqrt * 48 reads it in pixels, beside the validation RMSE.
    fig = training_curves(history.assign(train_rmse=np.sqrt(history["train_loss"]) * 48), LEARNING_CURVES, marker="o")
    if "momentum" in history:
        twin = fig.axes[1].twinx()
        twin.plot(history["epoch"], history["momentum"], color="tab:red", marker="s", label="momentum")
        twin.set_ylabel("momentum")
        fig.tight_layout()
    return fig


def faces_figure(images, truth, predicted) -> plt.Figure:
    """Test faces with the true keypoints in green and the predicted ones in red."""
    cols = min(6, len(images))
    rows = int(np.ceil(len(images) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, x, t, p in zip(axes.ravel(), images, truth, predicted):
        ax.imshow(x, cmap="gray", vmin=0, vmax=255)
        ax.scatter(t[0::2], t[1::2], s=10, c="lime", label="true")
        ax.scatter(p[0::2], p[1::2], s=10, c="red", marker="x", label="predicted")
    axes.ravel()[0].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return fig


def per_keypoint_figure(table: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(9, 3.8))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["rmse"], 0.4, label="CNN")
    ax.bar(x + 0.2, table["baseline_rmse"], 0.4, label="mean position", color="grey")
    ax.set_xticks(x, table["keypoint"], rotation=45, ha="right", fontsize=7)
    ax.set(ylabel="RMSE on test (pixels)", title="Per-keypoint RMSE")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def make_net(settings: FacialKeypointsSettings, outputs: int = 30) -> KeypointCNN:
    """The net with initial weights drawn from the settings' seed: fit() seeds torch only once the net exists,
    and torch's own start-up seed differs from process to process (RMSE 1.689 / 1.706 px from one commit)."""
    import torch

    torch.manual_seed(settings.seed)
    m = settings.model
    return KeypointCNN(outputs, widths=m.widths, context=m.context, dropout=m.dropout, shrink=m.shrink)


class FacialKeypoints(Project):
    name = "facial-keypoints"
    capabilities = CAPABILITIES
    summary = "CNN with dropout regresses 15 facial keypoints (masked MSE, mirrored flips, Nesterov schedule); RMSE px"
    primary_metric = "rmse"
    higher_is_better = False
    Settings = FacialKeypointsSettings

    def make_sample(self, out_dir: Path, tiny: bool = False) -> dict:
        return (
            facial_keypoints_sample.generate(out_dir, rows=120) if tiny else facial_keypoints_sample.generate(out_dir)
        )

    def validate(self, settings: FacialKeypointsSettings) -> ValidationReport:
        path = fk.resolve_file(settings.data_dir, settings.data.file)
        report, _ = fk.validate_keypoints_file(path, fk.KeypointRules(settings.data.min_complete_rows))
        return report

    def prepare(self, settings: FacialKeypointsSettings) -> KeypointSplits:
        if settings.conformal is not None and settings.conformal.calibrate_on == "validation":
            raise SettingsError(
                "projects.facial-keypoints.conformal.calibrate_on: validation is not offered (its held-out split keeps "
                "the committed splits); use held_out"
            )
        X, Y = fk.load_keypoints(fk.resolve_file(settings.data_dir, settings.data.file))
        # calibration keeps its place in the draw, so test and val rows are the same with the conformal section or
        # without it (int 0: no row)
        calibration = settings.conformal.calibration if settings.conformal else 0
        sizes = {"test": settings.split.test, "calibration": calibration, "val": settings.split.val}
        test, cal, val, train = random_split(len(X), sizes, settings.seed).values()
        return KeypointSplits(X[train], Y[train], X[val], Y[val], X[cal], Y[cal], X[test], Y[test])

    def train(
        self, data: KeypointSplits, settings: FacialKeypointsSettings, *, on_epoch, checkpoint_dir: Path
    ) -> Trained:
        import torch

        from components.training.loop import fit, resolve_device
        from components.training.tasks import KeypointTask

        device = resolve_device(settings.device)
        t = settings.train
        net = make_net(settings)
        result = fit(
            net,
            KeypointTask(fk.mirrored_keypoint_order(), flip=t.flip),
            (data.X_train, data.Y_train),
            (data.X_val, data.Y_val),
            t,
            device,
            seed=settings.seed,
            on_epoch=on_epoch,
            checkpoint_dir=checkpoint_dir,
            resume=True,
            progress=False,
        )
        rows, best_epoch = result.as_rows(), result.best_epoch
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), checkpoint_dir / "best.pt")
        specialists = {}
        for name, keypoints in settings.specialists.items():
            columns, mirror = group_columns(keypoints)
            specialist = make_net(settings, outputs=len(columns))
            fit(
                specialist,
                KeypointTask(mirror, flip=t.flip),
                (data.X_train, data.Y_train[:, columns]),
                (data.X_val, data.Y_val[:, columns]),
                t,
                device,
                seed=settings.seed,
                progress=False,
            )
            specialists[name] = (specialist.cpu(), columns)
        info = {
            "best_epoch": best_epoch,
            "epochs_run": len(rows),
            "parameters": count_parameters(net),
            "optimizer": t.optimizer,
            **data.sizes(),
        }
        model = KeypointModel(net.cpu().eval(), specialists)
        return Trained(model, pd.DataFrame(rows), info)

    def evaluate(self, trained: Trained, data: KeypointSplits, settings: FacialKeypointsSettings) -> Report:
        # The served predictor's own output, so evaluate and score() measure the very same thing.
        frame = KeypointPredictor(trained.model).predict_frame(data.X_test)
        predicted = frame[list(fk.COORDINATES)].to_numpy()
        metrics = rmse_metrics(predicted, data.Y_test)
        baseline = np.broadcast_to(np.nanmean(data.Y_train, axis=0), data.Y_test.shape)
        baseline_metrics = rmse_metrics(baseline, data.Y_test)
        metrics["baseline_rmse"] = baseline_metrics["rmse"]  # interval coverage: the conformal stage's metrics
        per_keypoint = pd.DataFrame(
            {
                "keypoint": fk.KEYPOINTS,
                "rmse": [metrics.get(f"rmse_{k}", np.nan) for k in fk.KEYPOINTS],
                "baseline_rmse": [baseline_metrics.get(f"rmse_{k}", np.nan) for k in fk.KEYPOINTS],
            }
        )
        children = []
        for name, (net, columns) in trained.model.specialists.items():
            truth = data.Y_test[:, columns]
            children.append(
                ChildRun(
                    f"specialist-{name}",
                    {"keypoints": ",".join(fk.COORDINATES[c][:-2] for c in columns[::2])},
                    {
                        "rmse": masked_rmse(predict_pixels(net, data.X_test), truth),
                        "general_net_rmse": masked_rmse(predicted[:, columns], truth),
                    },
                )
            )
        n = min(settings.examples, len(data.X_test))
        figures = {
            "learning_curves": curves_figure(trained.history),
            "test_keypoints": faces_figure(data.X_test[:n], data.Y_test[:n], predicted[:n]),
            "per_keypoint_rmse": per_keypoint_figure(per_keypoint),
        }
        return Report(metrics, figures, {"history": trained.history, "per_keypoint": per_keypoint}, children)

    def score(self, model, data: KeypointSplits, settings: FacialKeypointsSettings) -> dict[str, float]:
        """RMSE (overall and per keypoint) and interval coverage recomputed from a served model's columns."""
        frame = model.predict(pd.DataFrame({"Image": fk.image_strings(data.X_test)}))
        metrics = rmse_metrics(frame[list(fk.COORDINATES)].to_numpy(), data.Y_test)
        return metrics | interval_metrics(frame, data.Y_test) if f"{fk.COORDINATES[0]}_lower" in frame else metrics

    def predictor(self, trained: Trained, data: KeypointSplits, settings: FacialKeypointsSettings):
        return KeypointPredictor(trained.model), pd.DataFrame({"Image": fk.image_strings(data.X_test[:2])})
