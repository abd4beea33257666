"""dinosaur-names: WordNet's real dinosaur genus names as the sample, a names file refused naming its file and line,
and the pipeline on numpy-rnn's NumPy char model beating the bigram baseline with mostly new names."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from components.data.formats.name_lines import read_lines
from components.projects import get_project, settings_schemas
from components.scratch.charlm import CharLanguageModel
from components.settings import load_project_settings
from components.validation.expectations import DataValidationError
from tests.conftest import REPO
from tests.test_numpy_cnn_rnn_projects import run_pipeline

PROJECT = "dinosaur-names"


@pytest.mark.unit
def test_sample_is_wordnets_dinosaur_genera_lowercased_sorted_and_deterministic(sample_data, tmp_path):
    path = sample_data(PROJECT) / "dinos.txt"
    names = read_lines(path)
    assert 30 <= len(names) <= 100 and names == sorted(set(names))
    assert {"tyrannosaurus", "velociraptor", "triceratops", "stegosaurus", "iguanodon", "diplodocus"} <= set(names)
    assert all(n.isalpha() and n.islower() for n in names)
    # genus names only: no common names (stegosaur), groups (theropod, ornithischian) or binomials
    assert not {"stegosaur", "tyrannosaur", "theropod", "ornithischian", "sauropod", "dinosaur"} & set(names)
    get_project(PROJECT).make_sample(tmp_path)
    assert (tmp_path / "dinos.txt").read_bytes() == path.read_bytes()


def settings_for(data_dir):
    return load_project_settings(
        REPO / "params.yaml", PROJECT, {PROJECT: settings_schemas()[PROJECT]}, overrides={"data_dir": str(data_dir)}
    )


@pytest.mark.unit
def test_an_empty_names_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / "dinos.txt").write_text("")
    with pytest.raises(DataValidationError) as err:
        get_project(PROJECT).validate(settings_for(tmp_path))
    message = str(err.value)
    assert str(tmp_path / "dinos.txt") in message and "at least 20 names to learn from; observed 0" in message


@pytest.mark.unit
def test_a_line_outside_a_to_z_is_refused_naming_the_file_and_line(sample_data, tmp_path):
    names = read_lines(sample_data(PROJECT) / "dinos.txt")
    (tmp_path / "dinos.txt").write_text("\n".join([*names[:10], "t-rex", *names[10:], "ptero2"]) + "\n")
    with pytest.raises(DataValidationError) as err:
        get_project(PROJECT).validate(settings_for(tmp_path))
    message = str(err.value)
    assert str(tmp_path / "dinos.txt") in message
    assert "line 11: 't-rex'" in message and f"line {len(names) + 2}: 'ptero2'" in message
    assert "only characters in" in message


@pytest.mark.unit
def test_a_held_out_name_may_hold_a_letter_no_training_name_has():
    model = CharLanguageModel("rnn", hidden_size=8, epochs=1, alphabet="abcdefghijklmnopqrstuvwxyz").fit(["abc", "cab"])
    assert model.loss(["zebra"]) > model.loss(["cab"]) > 0  # scored, not refused; an unseen letter costs more


@pytest.fixture(scope="module")
def dino_run(prefect_server, tmp_path_factory, sample_data):
    root = tmp_path_factory.mktemp("dinosaur-names-root")
    return root, run_pipeline(root, PROJECT, sample_data(PROJECT), {})


@pytest.mark.e2e
def test_default_model_beats_the_bigram_baseline_and_samples_mostly_new_names(dino_run):
    _, result = dino_run
    # 9 held-out genus names: bigram 2.03 nats/char, unigram 2.71; the default GRU reaches ~1.86
    assert result["loss"] < result["bigram_loss"] - 0.1, (result["loss"], result["bigram_loss"])
    assert result["bigram_loss"] < result["unigram_loss"]
    assert result["novel_fraction"] >= 0.8 and result["empty_sample_fraction"] < 0.05


@pytest.mark.e2e
def test_sampled_names_are_a_text_artifact_marked_new_or_copy(dino_run):
    _, result = dino_run
    client = MlflowClient()
    run_id = result["run_id"]
    text = open(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/files/sampled_names.txt")).read()
    rows = [line.split("\t") for line in text.splitlines()[1:]]
    assert len(rows) == 300 and {mark for _, mark in rows} <= {"new", "copy"}
    new_share = sum(mark == "new" for _, mark in rows) / len(rows)
    assert new_share == pytest.approx(result["novel_fraction"])
    children = client.search_runs([client.get_run(run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    assert sorted(c.info.run_name for c in children) == ["cell=lstm", "cell=rnn"]
