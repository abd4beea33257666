"""What every registered model is: a predictor that serves a frame and says what it needs installed.

components/serving/pyfunc_model.py calls ``predict_frame``; the pipeline's register step logs the model with
the base requirements every model gets (torch, torchvision, numpy, pandas, scikit-learn) plus the predictor's
``pip_requirements`` (what it imports at load time beyond them: music21 for MIDI, mapie for conformal sets,
efficientnet-lite-pytorch for that backbone), pinned to the installed versions. NumPy-free on purpose: the
NumPy-from-scratch predictors subclass it too.
"""

from __future__ import annotations

import functools
import pickle
import re
import sys
from abc import ABC, abstractmethod
from typing import Any

# Shipped with every model as code (code_paths), or part of Python: never a pip requirement.
NOT_REQUIREMENTS = {"components", "builtins", "__main__"}
ARRAYS = {"Tensor", "Parameter", "ndarray"}


class Predictor(ABC):
    pip_requirements: tuple[str, ...] | list[str] = ()

    @abstractmethod
    def predict_frame(self, inputs: Any):
        """The served output for ``inputs`` (a frame, an array, or what the project documents) as a DataFrame."""


class _Discard:
    def write(self, data) -> int:
        return memoryview(data).nbytes  # bytes, or a PickleBuffer of a NumPy array's memory


def pickled_requirements(predictor: Predictor) -> list[str]:
    """The distributions whose classes or functions the pickled ``predictor`` refers to: what unpickling it must
    import (torch for its tensors, MAPIE for a calibrator, efficientnet-lite-pytorch for that backbone's
    layers), found by pickling it once more through a recorder, so nothing a model needs at load time is left
    out of its requirements. Imports the predictor makes only when it predicts (music21) it declares itself."""
    modules: set[str] = set()

    class Recorder(pickle.Pickler):
        def reducer_override(self, obj):
            for owner in (obj, type(obj)):
                module = getattr(owner, "__module__", None)
                if isinstance(module, str):
                    modules.add(module.split(".", 1)[0])
            if type(obj).__name__ in ARRAYS and type(obj).__module__.split(".", 1)[0] in ("torch", "numpy"):
                return int, ()  # its class is recorded; its bytes (a model's weights) need not be written out
            return NotImplemented

    Recorder(_Discard(), protocol=pickle.HIGHEST_PROTOCOL).dump(predictor)
    distributions = _distributions()
    found = {
        dist
        for module in modules - NOT_REQUIREMENTS - set(sys.stdlib_module_names)
        for dist in distributions.get(module, [])
    }
    return sorted(found, key=str.lower)


@functools.cache
def _distributions() -> dict[str, list[str]]:
    """Top-level module -> the distributions providing it (reading every installed package's metadata: once).

    MLflow builds the same map (~2 s) when it checks a logged model's requirements; sharing its copy means a
    registration reads the metadata once, not twice."""
    try:
        from mlflow.utils import requirements_utils

        requirements_utils._init_modules_to_packages_map()
        return dict(requirements_utils._MODULES_TO_PACKAGES)
    except (ImportError, AttributeError):  # another MLflow layout: read it ourselves
        from importlib.metadata import packages_distributions

        return packages_distributions()


def requirements(predictor: Predictor) -> list[str]:
    """What the predictor declares (pins included), then what its pickle refers to; one entry per distribution
    (names compared as pip does: case, ``-`` and ``_`` alike)."""
    out: dict[str, str] = {}
    for requirement in [*predictor.pip_requirements, *pickled_requirements(predictor)]:
        out.setdefault(distribution_name(requirement), requirement)
    return list(out.values())


def distribution_name(requirement: str) -> str:
    """``MAPIE`` -> ``mapie``, ``efficientnet_lite==0.1`` -> ``efficientnet-lite``: the name without its version."""
    return re.split(r"[=<>~!;@ \[]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")
