"""The served model's signature: inferred by MLflow, with two things declared rather than inferred.

- Images of any height and width: an image example (N, H, W[, C]) would fix the served size, yet every image
  predictor resizes what it is handed to its net's size (tests/test_contract.py sends each a larger image), so
  height and width are declared variable (-1).
- Integer columns: MLflow's inference warns about every one that it "cannot represent missing values". A served
  set size, label index or count is never missing, so those columns are declared as ``long``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def is_image_batch(example) -> bool:
    """(N, H, W) grey or (N, H, W, C) with 1-4 channels, as image predictors take them."""
    return isinstance(example, np.ndarray) and (example.ndim == 3 or (example.ndim == 4 and example.shape[-1] <= 4))


def _schema(example):
    """MLflow's schema of ``example``, with image sides variable and integer columns declared."""
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, DataType, Schema, TensorSpec

    if is_image_batch(example):
        spec = infer_signature(example).inputs.inputs[0]
        return Schema([TensorSpec(spec.type, (-1, -1, -1, *spec.shape[3:]), spec.name)])
    if not isinstance(example, pd.DataFrame):
        return infer_signature(example).inputs
    integers = [c for c in example.columns if pd.api.types.is_integer_dtype(example[c])]
    rest = example.drop(columns=integers)
    inferred = {s.name: s for s in infer_signature(rest).inputs.inputs} if len(rest.columns) else {}
    return Schema([ColSpec(DataType.long, c) if c in integers else inferred[c] for c in example.columns])


def served_signature(example, output: pd.DataFrame):
    """The ModelSignature of a predictor that maps ``example`` to ``output`` (its ``predict_frame``)."""
    from mlflow.models import ModelSignature

    return ModelSignature(inputs=_schema(example), outputs=_schema(output))
