"""`train.gpus: N`: the train stage runs the project's training under torchrun on N processes (DDP in the shared
loop; gloo on this CPU, one process per GPU on a GPU machine), rank 0 logging into the flow's MLflow run.

mnist-dnn's MLP has no dropout or BatchNorm, so 2 processes, each on half of every global batch, follow the
1-process run: the same test accuracy within a point, far above chance (0.1), and one logged value per epoch.
"""

from __future__ import annotations

import pytest
import yaml
from mlflow.tracking import MlflowClient

SMALL = {
    "train": {"epochs": 3, "patience": 10},
    "data": {"train_limit": 2000, "test_limit": 500, "min_per_class": 10},
}


def run(project_root, gpus: int) -> dict:
    from components.tracking import runs as tracking
    from flows.pipeline import project_pipeline

    overrides = {**SMALL, "train": {**SMALL["train"], "gpus": gpus}}
    root = project_root("mnist-dnn", overrides)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for stage in ("active_learning", "conformal"):  # not what is compared here
        params["projects"]["mnist-dnn"].pop(stage, None)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    tracking.configure(root)
    return project_pipeline(project="mnist-dnn", root=str(root), register_model=False)


@pytest.mark.integration
def test_two_torchrun_processes_train_what_one_process_does(prefect_server, project_root, tmp_path_factory):
    one = run(project_root, 1)
    two = run(project_root, 2)
    assert two["accuracy"] > 0.6  # chance is 0.1
    assert abs(two["accuracy"] - one["accuracy"]) < 0.01, (one["accuracy"], two["accuracy"])
    history = MlflowClient().get_metric_history(two["run_id"], "val_accuracy")
    assert [m.step for m in history] == [1, 2, 3]  # rank 0 alone logged each epoch into the flow's run
    params = MlflowClient().get_run(two["run_id"]).data.params
    assert params["train.gpus"] == "2"


@pytest.mark.unit
def test_gpus_below_one_is_a_settings_error_naming_the_path(tmp_path):
    from components.projects import settings_schemas
    from components.settings import SettingsError, load_project_settings

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"projects": {"mnist-dnn": {"train": {"gpus": 0}}}}))
    with pytest.raises(SettingsError, match=r"projects\.mnist-dnn\.train\.gpus"):
        load_project_settings(tmp_path / "params.yaml", "mnist-dnn", settings_schemas())


@pytest.mark.unit
def test_gpus_for_a_project_without_a_torch_trainer_is_refused_before_anything_runs(run_cli):
    code, _, err = run_cli("run", "linear-regression", "--gpus", "2")
    assert code == 2
    assert "projects.linear-regression.train.gpus: unknown key" in err
