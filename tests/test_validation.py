"""Validation (a GX 1.x suite over an image manifest) passes good data and names what is wrong with bad data."""

import shutil

import pytest

from components.data.formats.images import MissingDataError
from components.validation.expectations import DataValidationError, ImageRules, validate_image_folder

pytestmark = pytest.mark.unit

RULES = ImageRules(
    classes=("with_mask", "without_mask"), min_size=24, max_size=4096, min_per_class=20, min_class_share=0.2
)


@pytest.fixture
def data(tmp_path, sample_data):
    root = tmp_path / "face-mask"
    shutil.copytree(sample_data("face-mask"), root)
    return root


def failure_of(root, rules=RULES) -> DataValidationError:
    with pytest.raises(DataValidationError) as err:
        validate_image_folder(root, rules)
    return err.value


def test_good_data_passes_every_expectation(data):
    report, manifest = validate_image_folder(data, RULES)
    assert report.success and len(manifest) >= 400
    assert {o.expectation for o in report.outcomes} >= {
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_unique",
    }


def test_corrupt_image_is_named_with_its_decoder_error(data):
    (data / "with_mask" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    error = failure_of(data)
    [failed] = [o for o in error.report.failures if o.column == "decodable"]
    assert failed.failing[0].startswith("with_mask/broken.png (cannot decode")
    assert "with_mask/broken.png" in str(error)
    # A file that does not decode fails once, not again for its (unknown) size.
    assert [o.column for o in error.report.failures] == ["decodable"]


def test_unknown_label_folder_is_named(data):
    (data / "cats").mkdir()
    shutil.copy(data / "with_mask" / "face000_0.png", data / "cats" / "kitten.png")
    (data / "with_mask" / "face000_0.png").unlink()  # keep file contents unique: only the label is wrong
    error = failure_of(data)
    [failed] = error.report.failures
    assert failed.column == "label" and failed.failing == ["cats/kitten.png"]
    assert "folder must be one of ['with_mask', 'without_mask']" in str(error)


def test_empty_class_is_named(data):
    for path in (data / "without_mask").iterdir():
        path.unlink()
    error = failure_of(data)
    failing = {o.column: o.failing for o in error.report.failures}
    assert failing["count"] == ["without_mask"]
    assert "each class needs at least 20 item(s) -> without_mask" in str(error)


def test_duplicate_files_and_wrong_sizes_are_named(data):
    shutil.copy(data / "with_mask" / "face001_0.png", data / "with_mask" / "copy.png")
    from PIL import Image

    Image.new("RGB", (10, 10)).save(data / "without_mask" / "tiny.png")
    failing = {o.column: o.failing for o in failure_of(data).report.failures}
    assert sorted(failing["sha256"]) == ["with_mask/copy.png", "with_mask/face001_0.png"]
    assert failing["width"] == ["without_mask/tiny.png"] == failing["height"]


def test_missing_or_empty_data_directory_says_how_to_get_data(tmp_path):
    with pytest.raises(MissingDataError, match=r"does not exist: run `dlfolio data`"):
        validate_image_folder(tmp_path / "nowhere", RULES)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingDataError, match="holds no files"):
        validate_image_folder(tmp_path / "empty", RULES)
