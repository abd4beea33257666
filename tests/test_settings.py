"""params.yaml is read into typed settings; every mistake names its YAML path and the expected type."""

import pytest
import yaml

from components.projects import settings_schemas
from components.settings import SettingsError, load_all_settings, load_project_settings

pytestmark = pytest.mark.unit

GOOD = {
    "defaults": {"seed": 3, "device": "cpu"},
    "projects": {"face-mask": {"data_dir": "data/face-mask", "data": {"classes": ["a", "b"]}, "train": {"epochs": 2}}},
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


def test_data_dir_defaults_to_data_slash_project_and_a_given_one_wins(tmp_path):
    bare = yaml.safe_load(yaml.safe_dump(GOOD))
    del bare["projects"]["face-mask"]["data_dir"]
    assert str(load(tmp_path, bare).data_dir) == "data/face-mask"
    bare["projects"]["face-mask"]["data_dir"] = "/elsewhere/faces"
    assert str(load(tmp_path, bare).data_dir) == "/elsewhere/faces"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"widht": 8},
            (
                r"projects\.face-mask\.model\.kwargs\.widht: unknown argument of MaskCNN "
                r"\(known: width, depth, dropout, batchnorm\)$"
            ),
        ),
        ({"width": "wide"}, r"projects\.face-mask\.model\.kwargs\.width: MaskCNN expects int, got 'wide'"),
        ({"in_channels": 1}, r"projects\.face-mask\.model\.kwargs\.in_channels: set from the data, not params\.yaml"),
    ],
)
def test_model_kwargs_are_checked_against_the_builders_signature_when_params_load(tmp_path, kwargs, message):
    bad = yaml.safe_load(yaml.safe_dump(GOOD))
    bad["projects"]["face-mask"]["model"] = {"name": "mask_cnn", "kwargs": kwargs}
    with pytest.raises(SettingsError, match=message):
        load(tmp_path, bad)


def test_an_unknown_model_name_lists_the_known_ones_and_kwargs_are_read_as_the_builder_types_them(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(GOOD))
    bad["projects"]["face-mask"]["model"] = {"name": "maskcnn"}
    with pytest.raises(
        SettingsError,
        match=r"projects\.face-mask\.model\.name: unknown model 'maskcnn' "
        r"\(known: .*mask_cnn",
    ):
        load(tmp_path, bad)
    good = {
        "defaults": GOOD["defaults"],
        "projects": {
            "mnist-dnn": {
                "data": {"labels": [0, 1], "height": 28, "width": 28, "channels": 1, "image_size": 28},
                "model": {"name": "mlp", "kwargs": {"hidden": [64, 32]}},
            }
        },
    }
    assert load(tmp_path, good, "mnist-dnn").model.kwargs == {"hidden": (64, 32)}  # MLP's tuple[int, ...]


def test_a_model_that_cannot_take_the_configured_images_is_refused_naming_the_key(tmp_path):
    happy = {
        "defaults": GOOD["defaults"],
        "projects": {
            "happy-house": {
                "data": {"labels": [0, 1], "height": 64, "width": 64, "channels": 3, "image_size": 64},
                "model": {"name": "happy_cnn", "kwargs": {"image_size": 32}},
            }
        },
    }
    with pytest.raises(
        SettingsError,
        match=r"projects\.happy-house\.model\.kwargs\.image_size: HappyCNN is built for "
        r"32 px images but the data are resized to 64 px",
    ):
        load(tmp_path, happy, "happy-house")
    small = yaml.safe_load(yaml.safe_dump(GOOD))
    small["projects"]["face-mask"]["data"]["image_size"] = 8
    small["projects"]["face-mask"]["data"]["min_size"] = 8
    with pytest.raises(
        SettingsError,
        match=r"projects\.face-mask\.data\.image_size: MaskCNN pools 4 times, so it "
        r"needs images of at least 16 px",
    ):
        load(tmp_path, small)


@pytest.mark.parametrize(
    "key,value,why",
    [
        ("train.lr", float("inf"), "train.lr: expected float, got inf (Input should be a finite number)"),
        ("train.lr", float("nan"), "train.lr: expected float, got nan"),
        ("train.grad_clip", float("inf"), "train.grad_clip: expected float or null, got inf"),
        ("train.epochs", True, "train.epochs: expected int, got True (Value error, true/false is not a number here)"),
        ("train.lr", True, "train.lr: expected float, got True"),
        ("seed", -1, "seed: expected int, got -1"),
        ("seed", 2**32, "seed: expected int"),
    ],
)
def test_values_that_fail_later_are_refused_when_params_load(tmp_path, key, value, why):
    """Today .inf trains to NaN, `epochs: true` trains one epoch and seed -1 fails in NumPy after the data loads."""
    bad = yaml.safe_load(yaml.safe_dump(GOOD))
    section = bad["projects"]["face-mask"]
    *parents, last = key.split(".")
    for parent in parents:
        section = section.setdefault(parent, {})
    section[last] = value
    with pytest.raises(SettingsError) as err:
        load(tmp_path, bad)
    assert f"params.yaml: projects.face-mask.{why}" in str(err.value)


def test_held_out_fractions_must_leave_data_to_train(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(GOOD))
    bad["projects"]["face-mask"]["split"] = {"val": 0.5, "test": 0.5}
    with pytest.raises(SettingsError) as err:
        load(tmp_path, bad)
    assert str(err.value).endswith(
        "params.yaml: projects.face-mask.split: val + test is 1: they must leave some data to train (< 1)"
    )
    bad["projects"]["face-mask"]["split"] = {"val": 0.4, "test": 0.5}
    assert load(tmp_path, bad).split.val == 0.4


def test_true_false_keys_still_take_booleans_and_numbers_still_take_ints(tmp_path):
    good = yaml.safe_load(yaml.safe_dump(GOOD))
    good["projects"]["face-mask"]["train"].update(amp=False, channels_last=None, lr=1)  # an int lr is a float
    settings = load(tmp_path, good)
    assert settings.train.amp is False and settings.train.lr == 1.0


def test_check_refuses_a_bad_value_with_exit_2_and_its_path(tmp_path, capsys):
    from flows.cli import main

    bad = yaml.safe_load(yaml.safe_dump(GOOD))
    bad["projects"]["face-mask"]["train"]["epochs"] = True
    path = write(tmp_path, bad)
    assert main(["check", "--params", str(path)]) == 2
    assert f"{path}: projects.face-mask.train.epochs: expected int, got True" in capsys.readouterr().err
