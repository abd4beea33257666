"""The served model's signature: inferred by MLflow, with integer columns declared rather than inferred.

MLflow's inference warns about every integer column that it "cannot represent missing values". A served set
size, label index or count is never missing, so those columns are declared as ``long`` and the rest inferred."""

from __future__ import annotations

import pandas as pd


def _integer_columns(frame) -> list[str]:
    if not isinstance(frame, pd.DataFrame):
        return []
    return [c for c in frame.columns if pd.api.types.is_integer_dtype(frame[c]) and not frame[c].isna().any()]


def _declared(schema, frame: pd.DataFrame, integers: list[str]):
    from mlflow.types import ColSpec, DataType, Schema

    inferred = {spec.name: spec for spec in schema.inputs} if schema is not None else {}
    return Schema([ColSpec(DataType.long, c) if c in integers else inferred[c] for c in frame.columns])


def served_signature(example, output: pd.DataFrame):
    """The ModelSignature of a predictor that maps ``example`` to ``output`` (its ``predict_frame``)."""
    from mlflow.models import ModelSignature, infer_signature

    parts = []
    for frame in (example, output):
        integers = _integer_columns(frame)
        rest = frame.drop(columns=integers) if integers else frame
        if integers:
            schema = infer_signature(rest).inputs if len(rest.columns) else None
            parts.append(_declared(schema, frame, integers))
        else:
            parts.append(infer_signature(rest).inputs)
    return ModelSignature(inputs=parts[0], outputs=parts[1])
