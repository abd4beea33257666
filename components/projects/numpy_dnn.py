"""numpy-dnn: an L-layer network written in NumPy, and the course's comparisons as child runs [seeds 001, 003, 004].

Real format: MNIST IDX files (train-images-idx3-ubyte[.gz], ...). Offline sample: Fashion-MNIST, the same
format and size. ``data.format: points`` reads a 2-D point set instead (train.csv/test.csv of x1,x2,label; the
regularisation study's generated football positions) and draws the decision boundary; ``catvnoncat`` reads
logistic-regression's h5 layout (the shallow-vs-deep study). The main model trains on the full training set; the comparisons (initialisation, optimiser,
regularisation, learning-rate decay) train small arms on a subset and are logged as nested runs with plots.
Evaluation also gradient-checks the trained network (float64, sampled coordinates of every layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from components.data.formats import catvnoncat, points
from components.data.formats.arrays import ArrayPart, ArrayRules, validate_arrays
from components.data.formats.idx import copy_fashion_mnist, find_idx_files, load_mnist
from components.data.splits import random_split
from components.evaluation.plots import Panel, decision_boundary_figure, training_curves
from components.evaluation.report import ChildRun, Report, classification_report, served_classifier_metrics
from components.projects.base import Project, Trained
from components.projects.settings.numpy_dnn import CAPABILITIES, NumpyDNNSettings
from components.scratch.comparisons import ArmResult, default_arms, run_arms
from components.scratch.dense import DenseClassifier, DenseNet, as_features
from components.scratch.gradcheck import relative_error, sampled_numerical_gradient
from components.scratch.predictors import ImagePredictor, PointPredictor
from components.validation.expectations import ValidationReport


@dataclass
class IdxSplits:
    X_train: np.ndarray  # uint8 (N, H, W)
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    X_cal: np.ndarray | None = None  # conformal calibration (Project.with_calibration)
    y_cal: np.ndarray | None = None


def gradient_check(
    model: DenseClassifier, X: np.ndarray, y: np.ndarray, coordinates: int, seed: int, l2: float, keep_prob: float
) -> dict[str, float]:
    """Relative error of the analytic gradient against central differences, per parameter array, on a float64
    copy of the trained net (with its L2 penalty and a fixed dropout mask)."""
    src = model.net_
    net = DenseNet(src.sizes, src.activation.name, "softmax", "zeros", dtype=np.float64)
    net.params = {k: v.astype(np.float64) for k, v in src.params.items()}
    X = as_features(X, np.float64)
    y = np.searchsorted(model.classes_, y)
    loss = lambda: net.loss_and_grads(X, y, l2, keep_prob, np.random.default_rng(seed))[0]  # noqa: E731
    _, grads = net.loss_and_grads(X, y, l2, keep_prob, np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    errors = {}
    for name, p in net.params.items():
        idx = rng.choice(p.size, size=min(coordinates, p.size), replace=False)
        errors[name] = relative_error(grads[name].reshape(-1)[idx], sampled_numerical_gradient(loss, p, idx))
    return errors


def load_catvnoncat_arrays(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    cats = catvnoncat.load_catvnoncat(root)
    return cats.X_train, cats.y_train, cats.X_test, cats.y_test


def accuracy_panel(result: ArmResult) -> Panel:
    return Panel(
        {"train_accuracy": "train", "val_accuracy": "validation"}, "accuracy", f"{result.arm.group}: {result.arm.name}"
    )


def comparison_figure(group: str, results: list[ArmResult]) -> Figure:
    # Not through pyplot: an evaluation holds a figure per study until it is logged, and pyplot warns past 20.
    fig = Figure(figsize=(10, 3.8))
    a, b = fig.subplots(1, 2)
    for r in results:
        h = pd.DataFrame(r.history)
        (line,) = a.plot(h["epoch"], h["train_loss"], label=r.arm.name)
        b.plot(h["epoch"], h["val_accuracy"], color=line.get_color(), label=f"{r.arm.name} (validation)")
        if group == "regularization":
            b.plot(h["epoch"], h["train_accuracy"], color=line.get_color(), ls="--", lw=0.9)
    a.set(xlabel="epoch", ylabel="training loss", title=f"{group}: training loss", yscale="log")
    b.set(
        xlabel="epoch",
        ylabel="accuracy",
        title=f"{group}: validation accuracy" + (" (dashed: training)" if group == "regularization" else ""),
    )
    a.legend(fontsize=8)
    fig.tight_layout()
    return fig


class NumpyDNN(Project):
    name = "numpy-dnn"
    capabilities = CAPABILITIES
    summary = (
        "L-layer NumPy net: inits, optimisers, L2/dropout, LR decay, gradient checks (MNIST IDX; Fashion-MNIST sample)"
    )
    Settings = NumpyDNNSettings

    def make_sample(self, out_dir: Path, tiny: bool = False) -> dict:
        counts = copy_fashion_mnist(out_dir, limit=1200 if tiny else None)
        # The regularisation study's 2-D set (`dlfolio study numpy-dnn football`): generated, not recorded.
        football = points.generate_football(Path(out_dir) / "football")
        return counts | {f"football_{k}": v for k, v in football.items()}

    def validate(self, settings: NumpyDNNSettings) -> ValidationReport:
        if settings.data.format == "points":  # a 2-D point set (the football-positions study)
            return points.validate_points(
                settings.data_dir, len(settings.data.class_names), settings.data.min_per_class
            )
        d = settings.data
        if d.format == "catvnoncat":  # the h5 layout of logistic-regression (the shallow-vs-deep study)
            cats = catvnoncat.load_catvnoncat(settings.data_dir)
            labels = tuple(range(len(cats.classes)))
            parts = {
                split: ArrayPart(
                    getattr(cats, f"X_{split}"), getattr(cats, f"y_{split}"), catvnoncat.FILES[split], labels
                )
                for split in ("train", "test")
            }
        else:
            files = find_idx_files(settings.data_dir)
            X_train, y_train, X_test, y_test = load_mnist(settings.data_dir)
            parts = {
                "train": ArrayPart(X_train[..., None], y_train, files["train_images"].name),
                "test": ArrayPart(X_test[..., None], y_test, files["test_images"].name),
            }
        rules = ArrayRules(
            labels=tuple(range(len(d.class_names))),
            height=d.image_size,
            width=d.image_size,
            channels=3 if d.format == "catvnoncat" else 1,
            min_per_class=d.min_per_class,
            min_class_share=d.min_class_share,
        )
        return validate_arrays(str(settings.data_dir), parts, rules)

    def prepare(self, settings: NumpyDNNSettings) -> IdxSplits:
        loader = {"points": points.load_points, "catvnoncat": load_catvnoncat_arrays}.get(
            settings.data.format, load_mnist
        )
        X, y, X_test, y_test = loader(settings.data_dir)
        # Unsorted: minibatches are drawn from the rows in this order, as before the shared helper.
        val, train = random_split(len(X), {"val": settings.data.val_size}, settings.seed, sort=False).values()
        return self.with_calibration(IdxSplits(X[train], y[train], X[val], y[val], X_test, y_test), settings)

    def estimator(self, settings: NumpyDNNSettings) -> DenseClassifier:
        m, t = settings.model, settings.train
        return DenseClassifier(
            hidden=m.hidden,
            activation=m.activation,
            init=m.init,
            random_scale=m.random_scale,
            optimizer=t.optimizer,
            lr=t.lr,
            beta1=t.beta1,
            beta2=t.beta2,
            epochs=t.epochs,
            batch_size=t.batch_size,
            l2=t.l2,
            l1=t.l1,
            keep_prob=t.keep_prob,
            decay=t.decay,
            decay_rate=t.decay_rate,
            decay_interval=t.decay_interval,
            seed=settings.seed,
        )

    def train(self, data: IdxSplits, settings: NumpyDNNSettings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        model = self.estimator(settings).fit(data.X_train, data.y_train, data.X_val, data.y_val, on_epoch=on_epoch)
        np.savez(checkpoint_dir / "weights.npz", **model.net_.params)
        params = sum(p.size for p in model.net_.params.values())
        best = max(model.history_, key=lambda h: h["val_accuracy"])
        return Trained(
            model,
            pd.DataFrame(model.history_),
            {
                "parameters": int(params),
                "best_epoch": best["epoch"],
                "train": len(data.y_train),
                "val": len(data.y_val),
                "test": len(data.y_test),
            },
        )

    def evaluate(self, trained: Trained, data: IdxSplits, settings: NumpyDNNSettings) -> Report:
        model = trained.model
        proba = model.predict_proba(data.X_test)
        evaluation = classification_report(data.y_test, proba, model.classes_)
        evaluation.figures["training_curves"] = training_curves(trained.history)
        if settings.data.format == "points":
            evaluation.figures["decision_boundary"] = decision_boundary_figure(
                model, data.X_train, data.y_train, settings.data.class_names, data.X_test, data.y_test
            )
        evaluation.tables["history"] = trained.history
        g, t = settings.gradcheck, settings.train
        errors = gradient_check(
            model, data.X_val[: g.samples], data.y_val[: g.samples], g.coordinates, settings.seed, t.l2, t.keep_prob
        )
        evaluation.metrics["gradcheck_max_relative_error"] = max(errors.values())
        evaluation.tables["gradient_check"] = pd.DataFrame(
            {"parameter": list(errors), "relative_error": list(errors.values())}
        )
        if settings.comparisons.enabled:
            self._compare(evaluation, data, settings)
        return evaluation

    def _compare(self, evaluation: Report, data: IdxSplits, settings: NumpyDNNSettings) -> None:
        c = settings.comparisons
        arms = default_arms(
            c.optimizer_lrs,
            c.l2,
            c.keep_prob,
            c.decays,
            c.sgd_lr,
            c.regularization_train_size,
            c.regularization_epochs,
            c.decay_interval,
        )
        base = {
            "hidden": c.hidden,
            "activation": settings.model.activation,
            "init": "he",
            "epochs": c.epochs,
            "batch_size": c.batch_size,
            "seed": settings.seed,
        }
        results = run_arms(
            arms,
            base,
            data.X_train[: c.train_size],
            data.y_train[: c.train_size],
            data.X_val[: c.val_size],
            data.y_val[: c.val_size],
        )
        rows = []
        for r in results:
            history = pd.DataFrame(r.history).rename(columns={"epoch": "step"})
            evaluation.children.append(
                ChildRun(
                    f"{r.arm.group}: {r.arm.name}",
                    {"group": r.arm.group, "arm": r.arm.name, **r.params},
                    r.metrics,
                    history,
                    {"curves": training_curves(pd.DataFrame(r.history), [accuracy_panel(r)], figsize=(4.5, 3.2))},
                )
            )
            rows.append({"group": r.arm.group, "arm": r.arm.name, **r.metrics})
        for group in dict.fromkeys(r.arm.group for r in results):
            evaluation.figures[f"compare_{group}"] = comparison_figure(
                group, [r for r in results if r.arm.group == group]
            )
        evaluation.tables["comparisons"] = pd.DataFrame(rows)

    def score(self, model, data: IdxSplits, settings: NumpyDNNSettings) -> dict[str, float]:
        names = settings.data.class_names
        return served_classifier_metrics(model.predict(data.X_test), data.y_test, range(len(names)), names)

    def predictor(self, trained: Trained, data: IdxSplits, settings: NumpyDNNSettings):
        if settings.data.format == "points":
            return PointPredictor(trained.model, dict(enumerate(settings.data.class_names))), data.X_test[:2]
        size = settings.data.image_size
        shape = (size, size, 3) if settings.data.format == "catvnoncat" else (size, size)
        return ImagePredictor(trained.model, shape, dict(enumerate(settings.data.class_names))), data.X_test[:2]
