"""The served signature: what MLflow would infer, with integer columns declared, so registering prints no hint."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature

from components.serving.signature import served_signature

pytestmark = pytest.mark.unit

OUTPUT = pd.DataFrame(
    {"label": ["cat", "dog"], "set_size": np.array([1, 2]), "probability": [0.9, 0.6], "set": [["cat"], ["cat", "dog"]]}
)


def mlflows_own(example, output):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return infer_signature(example, output)


def test_a_table_signature_is_mlflows_inference_without_its_integer_column_hint():
    table = pd.DataFrame({"celsius": [1.5, 2.0], "count": [3, 4]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the hint is a UserWarning: it would raise here
        signature = served_signature(table, OUTPUT)
    assert signature == mlflows_own(table, OUTPUT)
    assert signature.inputs.input_types()[1].name == "long" and signature.outputs.input_types()[1].name == "long"


@pytest.mark.parametrize("shape", [(2, 64, 64, 3), (2, 96, 96)], ids=["rgb", "grey"])
def test_images_of_any_height_and_width_are_accepted_with_their_channels_and_dtype_kept(shape):
    from mlflow.types import TensorSpec

    example = np.zeros(shape, dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signature = served_signature(example, OUTPUT)
    (spec,) = signature.inputs.inputs
    assert isinstance(spec, TensorSpec) and spec.type == np.dtype("uint8")
    assert spec.shape == (-1, -1, -1, *shape[3:])
    assert signature.outputs == mlflows_own(example, OUTPUT).outputs


def test_a_frame_of_only_integers_is_declared_column_by_column():
    output = pd.DataFrame({"start": [0, 5], "end": [4, 9]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signature = served_signature(pd.DataFrame({"text": ["a b", "c"]}), output)
    assert signature.outputs.input_names() == ["start", "end"] and signature == mlflows_own(
        pd.DataFrame({"text": ["a b", "c"]}), output
    )
