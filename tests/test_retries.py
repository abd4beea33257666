"""Which failures the tracking/object-store tasks retry: connection-type errors only (flows/retries.py).

The errors are real: raised by MLflow's client and by boto3 against a port where nothing listens, so the test
follows what those libraries actually raise (MLflow wraps requests' ConnectionError in an MlflowException).
"""

import socket

import pytest

pytestmark = pytest.mark.unit


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # free again once closed: nothing listens there


def raised(call) -> BaseException:
    try:
        call()
    except BaseException as exc:  # noqa: BLE001
        return exc
    raise AssertionError("the call did not fail")


def test_a_tracking_server_or_object_store_that_is_not_there_is_transient(monkeypatch):
    import boto3
    from botocore.config import Config
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from flows.retries import is_transient

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries: not what is tested here
    mlflow_error = raised(lambda: MlflowClient(f"http://127.0.0.1:{closed_port()}").search_experiments())
    assert isinstance(mlflow_error, MlflowException) and is_transient(mlflow_error)

    s3 = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{closed_port()}", aws_access_key_id="x", aws_secret_access_key="x",
        region_name="us-east-1", config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )  # fmt: skip
    s3_error = raised(lambda: s3.list_buckets())
    assert type(s3_error).__name__ == "EndpointConnectionError" and is_transient(s3_error)
    assert is_transient(ConnectionResetError(104, "Connection reset by peer"))


def test_validation_errors_and_refusals_are_not_retried(tmp_path):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST

    from components.errors import DlfolioError
    from flows.retries import is_transient

    assert not is_transient(MlflowException("Invalid model version source", error_code=INVALID_PARAMETER_VALUE))
    assert not is_transient(MlflowException("no such version", error_code=RESOURCE_DOES_NOT_EXIST))
    assert not is_transient(ValueError("a forced promotion needs a reason"))
    assert not is_transient(KeyError("test_rmse"))
    # Our own errors never are, even when raised while handling a connection error.
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError:
            raise DlfolioError("params.yaml: train.lr must be > 0") from None
    except DlfolioError as exc:
        assert exc.__context__ is not None and not is_transient(exc)


def test_the_prefect_retry_condition_reads_the_failed_states_error():
    from prefect.states import Completed, Failed

    from flows.retries import TRANSIENT_IO_RETRIES, retry_on_transient_io

    assert retry_on_transient_io(None, None, Failed(data=ConnectionRefusedError(111, "Connection refused")))
    assert not retry_on_transient_io(None, None, Failed(data=ValueError("bad input")))
    assert not retry_on_transient_io(None, None, Completed(data=1))
    assert TRANSIENT_IO_RETRIES["retries"] == len(TRANSIENT_IO_RETRIES["retry_delay_seconds"]) >= 2
    assert list(TRANSIENT_IO_RETRIES["retry_delay_seconds"]) == sorted(TRANSIENT_IO_RETRIES["retry_delay_seconds"])
