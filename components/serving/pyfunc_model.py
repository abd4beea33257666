"""MLflow models-from-code entry point: MLflow runs this file to build the served model.

Logging a file instead of a pickled object keeps the model loadable without cloudpickle and across
Python versions; the predictor itself is an artifact (``predictor.joblib``).
"""

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import set_model


class PredictorModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from components.serving.legacy import load_predictor

        self.predictor = load_predictor(context.artifacts["predictor"])

    # np.ndarray: MLflow then takes the schema from the logged signature rather than from the hint.
    def predict(self, context, model_input: np.ndarray, params=None) -> pd.DataFrame:
        return self.predictor.predict_frame(model_input)


set_model(PredictorModel())
