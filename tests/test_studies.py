"""`dlfolio study`: a project's named hyperparameter studies (params.yaml projects.P.studies), each a preset sweep
checked when params.yaml loads, run as one MLflow parent run with a child run per configuration and the
comparison plot on the parent; numpy-dnn's football-positions study draws its decision boundaries in one figure
and reports the gradient check."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from components.grid import expand_grid, parse_set, parse_sets
from components.projects import settings_schemas
from components.settings import SettingsError, load_all_settings, load_project_settings
from flows.study import run_studies
from tests.conftest import REPO

PARAMS = """\
defaults: {{seed: 0, device: cpu}}
projects:
  linear-regression:
    data_dir: {data_dir}
    data: {{file: temperatures.csv, min_rows: 20}}
    split: {{test: 0.2}}
    train: {{lr: 0.02, epochs: 80, standardize: true, log_every: 20}}
    studies:
      learning-rates:
        description: two rates
        grid: ["train.lr=1e-6,0.3", "split={{test: 0.2}}"]
        fixed: ["train.epochs=60"]
{extra}"""


def write_params(tmp_path, data_dir, extra: str = "") -> None:
    (tmp_path / "params.yaml").write_text(PARAMS.format(data_dir=data_dir, extra=extra))


def parent_run(client: MlflowClient, experiment: str, study: str):
    runs = client.search_runs(
        [client.get_experiment_by_name(experiment).experiment_id],
        f"tags.study = '{study}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    assert runs, f"no MLflow run tagged study={study}"
    return runs[0]


def children(client: MlflowClient, parent) -> list:
    return client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")


# --- the presets -------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_every_preset_in_params_yaml_validates_and_the_seeds_studies_are_there():
    settings = load_all_settings(REPO / "params.yaml", settings_schemas())
    studies = {name: s.studies for name, s in settings.items() if s.studies}
    assert {
        "activations",
        "depth-width",
        "initialization",
        "optimizers",
        "regularization",
        "lr-decay",
        "football",
        "shallow-vs-deep",
    } <= set(studies["numpy-dnn"])
    assert {
        "learning-rates",
        "batch-sizes",
        "regularization",
        "dropout-batchnorm",
        "grad-clip",
        "lr-schedules",
        "optimizers",
        "ann-vs-cnn",
    } <= set(studies["face-mask"])
    for project, presets in studies.items():
        for name, study in presets.items():
            configs = study.configurations()
            assert 2 <= len(configs) <= study.max_runs, (project, name)
            assert len({repr(sorted(c.items())) for c in configs}) == len(configs), (project, name)
            # each configuration loads as the run it is (face-mask's MLP child is no failed check of the
            # BatchNorm study against an MLP)
            for config in configs:
                run = load_project_settings(
                    REPO / "params.yaml", project, settings_schemas(), study.fixed_values() | config
                )
                assert run.studies == {}
    lrs = [c["train.lr"] for c in studies["face-mask"]["learning-rates"].configurations()]
    assert min(lrs) == 0.001 and max(lrs) == 0.6
    inits = [c["model.init"] for c in studies["numpy-dnn"]["initialization"].configurations()]
    assert inits == ["zeros", "random", "he", "xavier"]


@pytest.mark.unit
def test_keys_joined_by_plus_vary_together():
    key, values = parse_set("train.optimizer+train.lr=[gd, 0.5],[adam, 1e-3]")
    assert key == "train.optimizer+train.lr" and values == [["gd", 0.5], ["adam", 0.001]]
    configs = expand_grid(parse_sets([f"{key}=[gd, 0.5],[adam, 1e-3]", "model.hidden=[8],[16, 8]"]))
    assert configs == [
        {"train.optimizer": "gd", "train.lr": 0.5, "model.hidden": [8]},
        {"train.optimizer": "gd", "train.lr": 0.5, "model.hidden": [16, 8]},
        {"train.optimizer": "adam", "train.lr": 0.001, "model.hidden": [8]},
        {"train.optimizer": "adam", "train.lr": 0.001, "model.hidden": [16, 8]},
    ]
    with pytest.raises(SettingsError, match="a list of 2"):
        parse_set("train.optimizer+train.lr=adam,sgd")


@pytest.mark.unit
@pytest.mark.parametrize(
    "study, message",
    [
        (
            '{grid: ["train.lrr=0.1,0.2"]}',
            "projects.linear-regression.studies.bad.grid.0: configuration train.lrr=0.1: train.lrr: unknown key "
            "(known keys here: epochs, log_every, lr, standardize)",
        ),
        (
            '{grid: ["train.epochs=10", "train.lr=0.1,fast"]}',
            "projects.linear-regression.studies.bad.grid.1: configuration train.epochs=10 train.lr=fast: "
            "train.lr: expected float, got 'fast'",
        ),
        (
            '{grid: ["train.lr=0.1,0.2"], fixed: ["train.epochs=ten"]}',
            "projects.linear-regression.studies.bad.fixed.0: configuration train.lr=0.1: train.epochs: expected int",
        ),
        ('{grid: ["train.lr"]}', "projects.linear-regression.studies.bad.grid.0: 'train.lr': expected KEY=VALUE"),
        (
            '{grid: ["train.lr=0.1,0.2"], fixed: ["train.epochs=10,20"]}',
            "projects.linear-regression.studies.bad.fixed.0: 'train.epochs=10,20': a fixed entry takes one value",
        ),
        (
            '{grid: ["train.lr=0.1,0.2"], fixed: ["train.lr=0.3"]}',
            "projects.linear-regression.studies.bad.fixed: train.lr: both swept (grid) and fixed",
        ),
        ('{grid: ["train.lr=0.1"], metrc: rmse}', "projects.linear-regression.studies.bad.metrc: unknown key"),
    ],
)
def test_a_bad_preset_is_refused_when_params_yaml_loads_naming_its_yaml_path(tmp_path, study, message):
    write_params(tmp_path, tmp_path, f"      bad: {study}\n")
    with pytest.raises(SettingsError) as error:
        load_project_settings(tmp_path / "params.yaml", "linear-regression", settings_schemas())
    assert message in str(error.value)


@pytest.mark.unit
def test_study_list_and_help_say_what_runs_and_an_unknown_study_is_refused(tmp_path, run_cli):
    write_params(tmp_path, tmp_path)
    code, out, err = run_cli("study", "linear-regression", "--list", "--root", str(tmp_path))
    assert code == 0, err
    assert "learning-rates: two rates" in out and "configurations: 2" in out
    assert "grid   train.lr=1.0e-06,0.3" in out and "fixed  train.epochs=60" in out
    code, out, err = run_cli("study", "linear-regression", "--list", "--set", "train.lr=0.1", "--root", str(tmp_path))
    assert "configurations: 1" in out and "grid   train.lr=0.1" in out
    code, out, err = run_cli("study", "linear-regression", "nosuch", "--root", str(tmp_path))
    assert code == 2 and "no study 'nosuch'; known: learning-rates" in err
    assert not (tmp_path / "mlruns").exists()
    with pytest.raises(SystemExit):
        run_cli("study", "--help")
    # `make run` / dvc repro never runs a study: no stage calls `dlfolio study`
    assert "dlfolio study" not in (REPO / "dvc.yaml").read_text()


# --- real studies ------------------------------------------------------------------------------------------
# The flows are called directly here and through the CLI (run_cli, which captures with capsys) only in the last
# test: a flow run under capsys leaves Prefect's console handler on that test's stream, closed for the next.


@pytest.mark.integration
def test_the_football_study_draws_every_boundary_on_the_parent_and_reports_the_gradient_check(
    prefect_server, project_root, sample_data
):
    root = project_root("numpy-dnn")
    football = sample_data("numpy-dnn") / "football"  # generated with the sample (components/data/formats/points.py)
    extra = dict(
        map(
            parse_set,
            [
                f"data_dir={football}",
                "train.l2+train.keep_prob=[0.0, 1.0],[0.7, 1.0]",  # two of the three configurations
                "train.epochs=150",
            ],
        )
    )
    (result,) = run_studies("numpy-dnn", ["football"], root=str(root), extra=extra)
    assert result["study"] == "football" and len(result["table"]) == 2
    client = MlflowClient()
    parent = parent_run(client, "numpy-dnn", "football")
    runs = children(client, parent)
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        assert run.data.metrics["test_gradcheck_max_relative_error"] < 1e-5
        assert run.data.metrics["test_accuracy"] > 0.7  # the set is learnable: chance is 0.5
        assert "plots/decision_boundary.png" in {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "sweep/decision_boundary.png" in {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    image = mlflow.artifacts.load_image(f"runs:/{parent.info.run_id}/sweep/decision_boundary.png")
    assert image.size[0] > 1.5 * image.size[1]  # two panels side by side
    table = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{parent.info.run_id}/sweep/comparison.csv"))
    assert list(table["status"]) == ["ok", "ok"] and np.all(table["gradcheck_max_relative_error"] < 1e-5)


@pytest.mark.integration
def test_a_face_mask_study_trains_its_torch_configurations_on_tiny_data(prefect_server, tmp_path):
    from components.data.samples import face_mask as face_mask_sample

    face_mask_sample.generate(tmp_path / "faces", faces=30)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = {**params["projects"]["face-mask"], "data_dir": str(tmp_path / "faces")}
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params["defaults"], "projects": {"face-mask": section}})
    )
    extra = dict(
        map(
            parse_set,
            ["train.optimizer+train.momentum+train.lr=[rmsprop, 0.9, 0.001],[adam, 0.9, 0.003]", "train.epochs=1"],
        )
    )
    (result,) = run_studies("face-mask", ["optimizers"], root=str(tmp_path), extra=extra)
    assert len(result["table"]) == 2
    client = MlflowClient()
    parent = parent_run(client, "face-mask", "optimizers")
    runs = children(client, parent)
    assert sorted(r.data.params["train.optimizer"] for r in runs) == ["adam", "rmsprop"]
    assert all(r.info.status == "FINISHED" and np.isfinite(r.data.metrics["test_f1"]) for r in runs)
    assert "sweep/comparison.png" in {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}


@pytest.mark.integration
def test_a_study_runs_a_child_per_configuration_with_the_comparison_on_the_parent(
    prefect_server, tmp_path, sample_data, run_cli
):
    write_params(tmp_path, sample_data("linear-regression"))
    # a mapping value in a configuration's name ({test: 0.2}) is no placeholder of Prefect's run-name template
    code, out, err = run_cli("study", "linear-regression", "--root", str(tmp_path))
    assert code == 0, err
    assert "learning-rates: best train.lr=0.3 split={test: 0.2} (rmse=" in out
    assert "ahead of train.lr=1.0e-06 split={test: 0.2}" in out
    client = MlflowClient()
    parent = parent_run(client, "linear-regression", "learning-rates")
    assert (
        parent.info.status == "FINISHED"
        and parent.data.tags["mlflow.runName"] == "study-linear-regression-learning-rates"
    )
    assert parent.data.params["sweep.fixed.train.epochs"] == "60" and parent.data.params["best.train.lr"] == "0.3"
    runs = children(client, parent)
    assert sorted(r.data.tags["mlflow.runName"] for r in runs) == [
        "train.lr=0.3 split={test: 0.2}",
        "train.lr=1.0e-06 split={test: 0.2}",
    ]
    assert all(r.data.params["train.epochs"] == "60" for r in runs)  # the fixed override reached every child
    rmse = {r.data.params["train.lr"]: r.data.metrics["test_rmse"] for r in runs}
    assert rmse["0.3"] < 3.0 < 20.0 < rmse["1e-06"]
    assert parent.data.metrics["margin_rmse"] == pytest.approx(rmse["1e-06"] - rmse["0.3"])
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    assert {"sweep/comparison.csv", "sweep/comparison.png", "sweep/best_config.yaml"} <= artifacts
    assert not (tmp_path / "outputs" / "linear-regression").exists()  # studies leave DVC's outputs alone


# --- the settings the studies sweep ------------------------------------------------------------------------


@pytest.mark.unit
def test_the_torch_trainer_takes_adam_and_rmsprop_and_maskcnn_can_drop_batchnorm():
    import torch

    from components.models.cnn import MaskCNN
    from components.settings import TrainSettings
    from components.training.optim import make_optimizer

    model = MaskCNN(width=4, depth=2)
    kinds = {
        name: type(make_optimizer(model, TrainSettings(optimizer=name, weight_decay=0.01), torch.device("cpu")))
        for name in ("adamw", "adam", "rmsprop", "sgd")
    }
    assert kinds == {
        "adamw": torch.optim.AdamW,
        "adam": torch.optim.Adam,
        "rmsprop": torch.optim.RMSprop,
        "sgd": torch.optim.SGD,
    }
    rms = make_optimizer(model, TrainSettings(optimizer="rmsprop"), torch.device("cpu"))
    assert rms.defaults["momentum"] == 0  # the course's RMSprop
    plain = MaskCNN(width=4, depth=2, batchnorm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 2
    assert plain(torch.zeros(2, 3, 16, 16)).shape == (2, 2)


@pytest.mark.unit
def test_numpy_dnn_reads_l1_and_a_point_set(tmp_path):
    from components.data.formats.points import generate_football, load_points, validate_points
    from components.projects import get_project

    generate_football(tmp_path)
    X_train, y_train, X_test, y_test = load_points(tmp_path)
    assert X_train.shape == (211, 2) and X_test.shape == (200, 2) and set(np.unique(y_train)) == {0, 1}
    assert 0.35 < y_train.mean() < 0.65 and validate_points(tmp_path, 2, 10).success
    (tmp_path / "test.csv").write_text("x1,x2,label\n0.1,0.2,1\n0.3,oops,0\n")
    with pytest.raises(Exception, match="line 3"):
        validate_points(tmp_path, 2, 1)
    write_params(tmp_path, tmp_path)
    text = (tmp_path / "params.yaml").read_text().replace("linear-regression:", "numpy-dnn:", 1)
    text = text.split("    data: {file")[0] + "    train: {l1: 0.5}\n"
    (tmp_path / "params.yaml").write_text(text)
    settings = load_project_settings(tmp_path / "params.yaml", "numpy-dnn", settings_schemas())
    assert get_project("numpy-dnn").estimator(settings).l1 == 0.5
