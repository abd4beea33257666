"""MLflow models-from-code entry point: MLflow runs this file to build the served model.

Logging a file instead of a pickled object keeps the model loadable without cloudpickle and across
Python versions; the predictor itself is an artifact (``predictor.joblib``).
"""

from mlflow.models import set_model

from components.serving import PredictorModel

set_model(PredictorModel())
