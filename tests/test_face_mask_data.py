"""The face-mask sample is real faces with masks drawn on, in the real format, byte-identical on every run."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from components.data.formats.images import load_images, scan_image_folder
from components.data.samples import face_mask as face_mask_sample

pytestmark = pytest.mark.unit


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_sample_generation_gives_identical_bytes_twice(tmp_path):
    counts_a = face_mask_sample.generate(tmp_path / "a")
    counts_b = face_mask_sample.generate(tmp_path / "b")
    assert counts_a == counts_b
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")


def test_sample_is_balanced_and_in_the_real_folder_format(sample_data):
    manifest = scan_image_folder(sample_data("face-mask"))
    counts = manifest["label"].value_counts().to_dict()
    assert set(counts) == {"with_mask", "without_mask"}
    assert counts["with_mask"] == counts["without_mask"] >= 200  # 100 LFW faces + cascade faces, 2 variants each
    assert manifest["decodable"].all() and (manifest["channels"] == 3).all()


def test_masked_and_unmasked_images_differ_in_the_lower_face(sample_data):
    root = sample_data("face-mask")
    manifest = scan_image_folder(root)
    images = load_images(root, manifest, 64).astype(float)
    masked = images[(manifest["label"] == "with_mask").to_numpy()]
    bare = images[(manifest["label"] == "without_mask").to_numpy()]
    # A drawn mask is a flat patch: the lower half of a masked face varies less than skin, lips and chin do.
    lower_std = lambda x: x[:, 40:58, 16:48].std(axis=(1, 2)).mean()  # noqa: E731
    assert lower_std(masked) < 0.8 * lower_std(bare)


def test_loader_reads_any_user_folder_of_that_format(tmp_path):
    """Users bring JPEGs and PNGs of any size, grey or colour: all are read as RGB at the configured size."""
    rng = np.random.default_rng(0)
    (tmp_path / "with_mask").mkdir()
    (tmp_path / "without_mask").mkdir()
    Image.fromarray(rng.integers(0, 255, (120, 90, 3), dtype=np.uint8)).save(tmp_path / "with_mask" / "a.jpg")
    Image.fromarray(rng.integers(0, 255, (50, 70), dtype=np.uint8)).save(tmp_path / "without_mask" / "b.png")
    manifest = scan_image_folder(tmp_path)
    assert manifest.set_index("path").loc["with_mask/a.jpg", "width"] == 90
    images = load_images(tmp_path, manifest, 32)
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8


@pytest.mark.parametrize("project", ["face-mask", "face-mask-transfer"])
def test_no_face_appears_in_two_splits(sample_data, project):
    """Every sample image of one LFW face (with and without its mask) lands in one split: a model scored on a
    face it trained on, masked the other way, would be scored on memory, not on masks."""
    from pathlib import Path

    from components.data.splits import groups_from_names
    from components.projects import get_project, settings_schemas
    from components.settings import load_project_settings

    settings = load_project_settings(Path("params.yaml"), project, settings_schemas())
    settings = settings.model_copy(update={"data_dir": sample_data("face-mask")})
    data = get_project(project).prepare(settings)
    parts = {"train": data.paths_train, "val": data.paths_val, "test": data.paths_test, "cal": data.paths_cal}
    faces = {part: set(groups_from_names(paths, settings.data.group_pattern)) for part, paths in parts.items() if paths}
    assert sum(len(paths) for paths in parts.values() if paths) == len(scan_image_folder(sample_data("face-mask")))
    assert {"train", "val", "test"} <= set(faces) and all(faces.values())
    for a in faces:
        for b in faces:
            assert a == b or not faces[a] & faces[b], f"{a} and {b} share faces {sorted(faces[a] & faces[b])[:5]}"
    # both classes of each face move together, so every split stays balanced
    for y in (data.y_train, data.y_val, data.y_test):
        assert abs((y == "with_mask").mean() - 0.5) < 0.01


def test_a_file_name_outside_the_group_pattern_is_refused_by_name(sample_data, tmp_path):
    import shutil

    from components.validation.expectations import DataValidationError, ImageRules, validate_image_folder

    root = tmp_path / "faces"
    shutil.copytree(sample_data("face-mask"), root)
    shutil.copy(root / "with_mask" / "face000_0.png", root / "with_mask" / "holiday.png")
    rules = ImageRules(classes=("with_mask", "without_mask"), group_pattern=r"^face(\d+)_")
    with pytest.raises(DataValidationError) as error:
        validate_image_folder(root, rules)
    assert "with_mask/holiday.png" in str(error.value.report.to_json())
    assert "group_pattern" in str(error.value.report.to_json())
