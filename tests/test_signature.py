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


@pytest.mark.parametrize(
    "example",
    [np.zeros((2, 8, 8, 3), dtype=np.uint8), pd.DataFrame({"celsius": [1.5, 2.0], "count": [3, 4]})],
    ids=["image-tensor", "table-with-an-integer-column"],
)
def test_the_signature_is_mlflows_inference_without_its_integer_column_hint(example):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the hint is a UserWarning: it would raise here
        signature = served_signature(example, OUTPUT)
    assert signature == mlflows_own(example, OUTPUT)
    assert signature.outputs.input_types()[1].name == "long"


def test_a_frame_of_only_integers_is_declared_column_by_column():
    output = pd.DataFrame({"start": [0, 5], "end": [4, 9]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signature = served_signature(pd.DataFrame({"text": ["a b", "c"]}), output)
    assert signature.outputs.input_names() == ["start", "end"] and signature == mlflows_own(
        pd.DataFrame({"text": ["a b", "c"]}), output
    )
