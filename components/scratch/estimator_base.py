"""scikit-learn's estimator protocol for the NumPy models, without making scikit-learn a hard dependency.

With scikit-learn installed (the normal case) the models inherit its real base classes, so ``clone``,
``get_params`` and tools such as MAPIE treat them like any estimator. Without it (a bare NumPy machine) a
minimal ``get_params``/``set_params`` stands in, and the model math is unchanged.
"""

from __future__ import annotations

import inspect

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
except ImportError:  # pragma: no cover - exercised only where scikit-learn is absent

    class BaseEstimator:
        def get_params(self, deep: bool = True) -> dict:
            names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
            return {name: getattr(self, name) for name in names}

        def set_params(self, **params):
            for name, value in params.items():
                setattr(self, name, value)
            return self

    class ClassifierMixin:
        _estimator_type = "classifier"

    class RegressorMixin:
        _estimator_type = "regressor"


__all__ = ["BaseEstimator", "ClassifierMixin", "RegressorMixin"]
