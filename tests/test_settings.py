"""params.yaml is read into typed settings; every mistake names its YAML path and the expected type."""

import pytest
import yaml

from components.projects import settings_schemas
from components.settings import SettingsError, load_all_settings, load_project_settings

pytestmark = pytest.mark.unit

GOOD = {
    "defaults": {"seed": 3, "device": "cpu"},
    "projects": {"face-mask": {"data_dir": "data/face-mask", "data": {"classes": ["a", "b"]},
                               "train": {"epochs": 2}}},
}


def write(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def load(tmp_path, params, project="face-mask"):
    return load_project_settings(write(tmp_path, params), project, settings_schemas())


def test_defaults_are_merged_into_each_project_and_project_keys_win(tmp_path):
    settings = load(tmp_path, GOOD)
    assert settings.seed == 3 and settings.device == "cpu"
    assert settings.train.epochs == 2
    override = {**GOOD, "projects": {"face-mask": {**GOOD["projects"]["face-mask"], "seed": 7}}}
    assert load(tmp_path, override).seed == 7


def test_wrong_type_names_the_yaml_path_and_expected_type(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(GOOD))
    bad["projects"]["face-mask"]["train"]["epochs"] = "ten"
    with pytest.raises(SettingsError) as err:
        load(tmp_path, bad)
    message = str(err.value)
    assert "projects.face-mask.train.epochs" in message
    assert "expected int" in message and "'ten'" in message


def test_unknown_key_names_the_yaml_path_and_lists_known_keys(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(GOOD))
    bad["projects"]["face-mask"]["train"]["epochz"] = 3
    with pytest.raises(SettingsError, match=r"projects\.face-mask\.train\.epochz: unknown key .*epochs"):
        load(tmp_path, bad)


def test_a_bad_shared_default_is_reported_under_defaults(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(GOOD))
    bad["defaults"]["device"] = "tpu"
    with pytest.raises(SettingsError, match=r"defaults\.device: expected one of 'auto', 'cpu', 'cuda'"):
        load(tmp_path, bad)


def test_missing_required_key_and_unknown_project_are_errors(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(GOOD))
    del bad["projects"]["face-mask"]["data"]
    with pytest.raises(SettingsError, match=r"projects\.face-mask\.data: required key is missing"):
        load(tmp_path, bad)
    bad = yaml.safe_load(yaml.safe_dump(GOOD))
    bad["projects"]["no-such-project"] = {}
    with pytest.raises(SettingsError, match=r"projects\.no-such-project: unknown project"):
        load_all_settings(write(tmp_path, bad), settings_schemas())


def test_the_repository_params_file_is_valid():
    from tests.conftest import REPO

    settings = load_all_settings(REPO / "params.yaml", settings_schemas())
    assert "face-mask" in settings
