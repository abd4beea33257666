"""The pipeline's conformal stage: calibrate each configured method on the calibration split, measure it on the
test split, and hand back the calibrator the registered model serves.

The project's data object brings the splits by name: ``X_train`` (and ``X_val`` where early stopping used one,
unless ``calibrate_on: validation`` makes it the calibration split) for the overlap check, ``X_cal``/``y_cal`` to calibrate, ``X_test``/``y_test`` to measure. Tabular data whose
values may repeat legitimately also brings ``ids_train``/``ids_cal`` (and ``ids_val``), e.g. CSV line numbers:
the overlap check then compares ids instead of row contents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from components.capabilities import ProbabilisticClassifier
from components.conformal.calibration import (
    CLASSIFICATION_METHODS,
    ConformalClassifier,
    ConformalRegressor,
    ConformalSettings,
    check_unseen,
    interval_metrics,
    per_class_coverage,
    set_metrics,
)
from components.conformal.drift import DriftResult
from components.evaluation.report import ChildRun, Report
from components.settings import SettingsError


@dataclass
class ConformalCalibration:
    """What the stage hands back: the report the pipeline logs like any other stage's (metrics
    ``conformal_<method>_<pct>_<name>``, the summary and per-class tables, the coverage figure, a child run per
    method) and the calibrator the registered model serves."""

    report: Report
    served: ConformalClassifier | ConformalRegressor
    served_method: str
    served_confidence: float

    def summary(self) -> str:
        table = self.report.tables["conformal_summary"]
        size = "mean_set_size" if "mean_set_size" in table else "mean_width"
        parts = [
            f"{r.method}@{r.confidence:g}: coverage={r.coverage:.3f} {size}={getattr(r, size):.3g}"
            for r in table.itertuples()
        ]
        m = self.report.metrics
        if "conformal_drift_pvalue" in m:
            warn = "WARNING" if m["conformal_drift_warning"] else "none"
            parts.append(f"drift p={m['conformal_drift_pvalue']:.3g} (alpha {m['conformal_drift_alpha']:g}): {warn}")
        return "; ".join(parts)


def pct(confidence: float) -> str:
    """0.9 -> '90', 0.975 -> '97.5': a metric-name-safe form of a confidence level."""
    return f"{100 * confidence:.4g}"


def _metric_safe(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_\-. /]", "_", str(name))


def _splits(data, settings: ConformalSettings) -> dict[str, Any]:
    names = ("X_train", "X_cal", "y_cal", "X_test", "y_test")
    missing = [n for n in names if getattr(data, n, None) is None]
    if missing:
        raise TypeError(
            f"conformal calibration needs a calibration split: {type(data).__name__} lacks "
            f"{', '.join(missing)} (add a `conformal:` section so prepare() holds one out)"
        )
    if len(data.y_cal) == 0:
        raise SettingsError("the calibration split is empty: raise conformal.calibration in params.yaml")
    n = len(data.y_cal)
    too_high = [c for c in settings.confidence_levels if not (n > 1 / (1 - c) and n > 1 / c)]
    if np.ndim(data.y_cal) == 1 and too_high:  # multi-output targets: outputs without enough rows get inf intervals
        raise SettingsError(
            f"the calibration split has {n} rows, too few for confidence {too_high[0]} (split conformal needs more "
            f"than 1 / (1 - confidence) = {1 / (1 - too_high[0]):.0f}): raise conformal.calibration or lower "
            "conformal.confidence_levels in params.yaml"
        )
    return {n: getattr(data, n) for n in names}


def run_conformal(model, data, settings: ConformalSettings, seed: int = 0) -> ConformalCalibration:
    s = _splits(data, settings)
    # calibrate_on: validation: the validation split is the calibration split (it only picked an epoch or reported)
    validation = None if settings.calibrate_on == "validation" else getattr(data, "X_val", None)
    seen = {"training": s["X_train"], "validation": validation}
    ids_cal = getattr(data, "ids_cal", None)
    ids_seen = {"training": getattr(data, "ids_train", None), "validation": getattr(data, "ids_val", None)}
    check_unseen(
        s["X_cal"],
        seen,
        ids_cal=ids_cal,
        ids_seen=ids_seen if ids_cal is not None else None,
        names_cal=getattr(data, "paths_cal", None),
    )
    if settings.methods[0] in CLASSIFICATION_METHODS:
        return _classification(model, s, settings, seed)
    return _regression(model, s, settings)


def _classification(model, s, settings: ConformalSettings, seed: int) -> ConformalCalibration:
    if not isinstance(model, ProbabilisticClassifier):
        raise TypeError(
            f"{type(model).__name__} has no predict_proba: classifier methods "
            f"{list(settings.methods)} need probabilities"
        )
    classes = np.asarray(model.classes_)
    proba_cal, proba_test = model.predict_proba(s["X_cal"]), model.predict_proba(s["X_test"])
    rows, class_rows, calibrators, children = [], [], {}, []
    for method in settings.methods:
        calibrator = ConformalClassifier(
            classes,
            method,
            settings.confidence_levels,
            settings.randomized,
            seed,
            settings.drift_alpha,
            settings.drift_test,
        ).fit(proba_cal, s["y_cal"])
        calibrators[method] = calibrator
        sets = calibrator.predict_sets(proba_test)
        child = {}
        for i, level in enumerate(settings.confidence_levels):
            rows.append({"method": method, "confidence": level, **set_metrics(sets[:, :, i], s["y_test"], classes)})
            per_class = per_class_coverage(sets[:, :, i], s["y_test"], classes)
            rows[-1]["min_class_coverage"] = float(per_class["coverage"].min())
            class_rows += [{"method": method, "confidence": level, **r} for r in per_class.to_dict("records")]
            child.update({f"{k}_{pct(level)}": v for k, v in rows[-1].items() if k not in ("method", "confidence")})
            child.update(
                {
                    _metric_safe(f"class_coverage_{pct(level)}_{r['class']}"): r["coverage"]
                    for r in per_class.to_dict("records")
                    if r["n"]
                }
            )
        children.append(ChildRun(f"conformal-{method}", _child_params(method, settings, s), child))
    calibration = _report(
        rows,
        {"conformal_per_class": pd.DataFrame(class_rows)},
        children,
        calibrators,
        settings,
        "mean_set_size",
        "mean set size",
    )
    return _with_drift(calibration, calibration.served.drift(proba_test))


def _regression(model, s, settings: ConformalSettings) -> ConformalCalibration:
    rows, calibrators, children = [], {}, []
    for method in settings.methods:
        calibrator = ConformalRegressor(
            model, method, settings.confidence_levels, settings.drift_alpha, settings.drift_test
        ).fit(s["X_cal"], s["y_cal"])
        calibrators[method] = calibrator
        _, intervals = calibrator.predict_intervals(s["X_test"])
        child = {}
        for i, level in enumerate(settings.confidence_levels):
            rows.append({"method": method, "confidence": level, **interval_metrics(intervals[:, :, i], s["y_test"])})
            child.update({f"{k}_{pct(level)}": v for k, v in rows[-1].items() if k not in ("method", "confidence")})
        children.append(ChildRun(f"conformal-{method}", _child_params(method, settings, s), child))
    calibration = _report(rows, {}, children, calibrators, settings, "mean_width", "mean interval width")
    return _with_drift(calibration, calibration.served.drift(s["X_test"]))


def _with_drift(calibration: ConformalCalibration, drift: DriftResult) -> ConformalCalibration:
    """The served model's drift warning on the test split as one batch: the test rows come from the calibration
    rows' source, so the warning should stay off (it fires on about drift_alpha of such batches)."""
    calibration.report.metrics.update(
        conformal_drift_pvalue=drift.pvalue,
        conformal_drift_warning=float(drift.warning),
        conformal_drift_alpha=drift.alpha,
    )
    return calibration


def _child_params(method: str, settings: ConformalSettings, s) -> dict[str, object]:
    return {
        "method": method,
        "confidence_levels": list(settings.confidence_levels),
        "randomized": settings.randomized,
        "n_calibration": len(s["y_cal"]),
        "n_test": len(s["y_test"]),
    }


def _report(rows, tables, children, calibrators, settings: ConformalSettings, size_key: str, size_label: str):
    summary = pd.DataFrame(rows)
    metrics = {
        f"conformal_{r['method']}_{pct(r['confidence'])}_{k}": float(v)
        for r in rows
        for k, v in r.items()
        if k not in ("method", "confidence")
    }
    method, confidence = settings.served
    calibrators[method].at(confidence)  # fails early if the served level was not calibrated
    report = Report(
        metrics,
        {"conformal_coverage_size": coverage_size_figure(summary, size_key, size_label)},
        {"conformal_summary": summary, **tables},
        children,
    )
    return ConformalCalibration(report, calibrators[method], method, confidence)


def coverage_size_figure(summary: pd.DataFrame, size_key: str, size_label: str) -> plt.Figure:
    """Empirical coverage against the nominal level (on the diagonal when calibrated), and the price in size."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    levels = np.sort(summary["confidence"].unique())
    span = [min(levels.min(), summary["coverage"].min()) - 0.02, 1.0]
    a.plot(span, span, "k--", lw=0.8, label="target")
    for method, group in summary.groupby("method", sort=False):
        group = group.sort_values("confidence")
        a.plot(group["confidence"], group["coverage"], "o-", label=method)
        b.plot(group["confidence"], group[size_key], "o-", label=method)
    a.set(xlabel="confidence level", ylabel="empirical coverage (test)", title="Coverage")
    b.set(xlabel="confidence level", ylabel=size_label, title="Size")
    a.legend()
    fig.tight_layout()
    return fig
