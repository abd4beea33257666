"""Which failures the tracking/object-store tasks retry: connection-type errors only (flows/retries.py).

The errors are real: raised by MLflow's client and by boto3 against a port where nothing listens, so the test
follows what those libraries actually raise (MLflow wraps requests' ConnectionError in an MlflowException).
"""

import socket

import pytest


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


@pytest.mark.unit
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


@pytest.mark.unit
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


@pytest.mark.unit
def test_the_prefect_retry_condition_reads_the_failed_states_error():
    from prefect.states import Completed, Failed

    from flows.retries import TRANSIENT_IO_RETRIES, retry_on_transient_io

    assert retry_on_transient_io(None, None, Failed(data=ConnectionRefusedError(111, "Connection refused")))
    assert not retry_on_transient_io(None, None, Failed(data=ValueError("bad input")))
    assert not retry_on_transient_io(None, None, Completed(data=1))
    assert TRANSIENT_IO_RETRIES["retries"] == len(TRANSIENT_IO_RETRIES["retry_delay_seconds"]) >= 2
    assert list(TRANSIENT_IO_RETRIES["retry_delay_seconds"]) == sorted(TRANSIENT_IO_RETRIES["retry_delay_seconds"])


@pytest.mark.integration
def test_an_object_store_that_comes_up_late_is_retried_until_the_write_succeeds(prefect_server, tmp_path):
    """A Prefect task with the pipeline's retry settings writes to S3 while the store is down: it fails with a
    connection error, the store (moto's real server) starts, and the retry (5 s later) succeeds. A validation
    error in the same task is not retried."""
    import subprocess
    import threading
    import time
    import urllib.request

    import boto3
    from botocore.config import Config
    from prefect import flow, task

    from flows.retries import TRANSIENT_IO_RETRIES
    from flows.stack import AWS_KEY, AWS_SECRET, Stack, moto_venv
    from tests.conftest import REPO

    port = closed_port()
    attempts: list[str] = []
    server: list[subprocess.Popen] = []

    def start_store() -> None:
        moto = moto_venv(Stack(REPO / ".stack", REPO))  # the checkout's moto venv (made on first use)
        server.append(subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
                return
            except OSError:
                time.sleep(0.2)

    @task(name="write-artifact", **TRANSIENT_IO_RETRIES)
    def write(body: bytes, valid: bool = True) -> str:
        attempts.append("write" if valid else "invalid")
        if not valid:
            raise ValueError("not a valid artifact")
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=AWS_KEY,
                          aws_secret_access_key=AWS_SECRET, region_name="us-east-1",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=2))  # fmt: skip
        try:
            s3.create_bucket(Bucket="late")
        except Exception:
            if len(attempts) == 1:  # the store was down; it comes up while the task waits for its retry
                threading.Thread(target=start_store, daemon=True).start()
            raise
        s3.put_object(Bucket="late", Key="a", Body=body)
        return s3.get_object(Bucket="late", Key="a")["Body"].read().decode()

    @flow
    def writes() -> str:
        return write(b"logged")

    @flow
    def invalid() -> None:
        write(b"", valid=False)

    try:
        started = time.monotonic()
        assert writes() == "logged"
        assert attempts == ["write", "write"] and time.monotonic() - started >= TRANSIENT_IO_RETRIES["retry_delay_seconds"][0]
        attempts.clear()
        with pytest.raises(ValueError):
            invalid()
        assert attempts == ["invalid"]  # failed once, not retried
    finally:
        for process in server:
            process.terminate()
            process.wait(timeout=30)
