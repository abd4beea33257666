"""The face-mask sample is real faces with masks drawn on, in the real format, byte-identical on every run."""

import hashlib
import logging
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from components.data.formats.images import load_images, scan_image_folder
from components.data.samples import face_mask as face_mask_sample
from components.errors import DlfolioError

pytestmark = pytest.mark.unit


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_sample_generation_gives_identical_bytes_twice(sample_data, tmp_path):
    """The session's sample (the default, mask_method auto: landmarks here) and a second generation now."""
    counts = face_mask_sample.generate(tmp_path / "again")
    assert counts == {"with_mask": 202, "without_mask": 202}
    assert tree_digest(tmp_path / "again") == tree_digest(sample_data("face-mask"))


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


@contextmanager
def dlfolio_log():
    """The messages logged to the "dlfolio" logger meanwhile (the CLI stops it propagating to pytest's caplog)."""
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("dlfolio")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def hull(points: np.ndarray, index: range | list[int]) -> np.ndarray:
    """The pixels of a 64 x 64 crop inside the convex hull of the landmarks ``index``."""
    region = np.zeros((face_mask_sample.SIZE,) * 2, np.uint8)
    cv2.fillConvexPoly(region, cv2.convexHull(points[list(index)].round().astype(np.int32)), 1)
    return region.astype(bool)


def test_a_landmark_mask_covers_mouth_and_nose_and_leaves_the_eyes_uncovered():
    """On real LFW faces of the sample's source, the drawn mask changes the mouth and the lower nose (placed
    there by the faces' own landmarks) and leaves the eyes as they were."""
    faces = face_mask_sample.real_faces()[:4]
    rng = np.random.default_rng(7)
    for i, face in enumerate(faces):
        points = face_mask_sample.face_landmarks(face)
        assert points is not None and points.shape == (68, 2), f"dlib finds face {i}"
        mouth, nose = hull(points, range(48, 60)), hull(points, range(30, 36))
        eyes = hull(points, range(36, 42)) | hull(points, range(42, 48))
        for _ in range(5):
            bare = face_mask_sample.tint(face, rng)
            masked = face_mask_sample.draw_landmark_mask(bare, points, rng)
            change = np.abs(masked.astype(int) - bare.astype(int)).sum(axis=2)  # summed over R, G, B
            lower = change[mouth | nose]
            # mask colours near the skin's change it less: the share of clearly changed pixels, and the mean
            assert (lower > 30).mean() > 0.5 and lower.mean() > 40, f"face {i}: mouth and nose are covered"
            assert (change[eyes] > 30).mean() < 0.1, f"face {i}: the eyes stay uncovered"
            assert change[eyes].mean() < 0.3 * lower.mean()


def test_the_mask_outline_follows_the_jaw_up_to_the_nose_bridge_under_the_eyes():
    face = face_mask_sample.real_faces()[0]
    points = face_mask_sample.face_landmarks(face)
    rng = np.random.default_rng(0)
    for _ in range(20):
        poly = face_mask_sample.landmark_mask_polygon(points, rng)
        inside = np.zeros((64, 64), np.uint8)
        cv2.fillPoly(inside, [poly], 1)
        inside = inside.astype(bool)
        assert inside[hull(points, range(48, 60))].all() and inside[hull(points, range(31, 36))].all()
        assert not inside[hull(points, range(36, 42)) | hull(points, range(42, 48))].any()
        top = poly[:, 1].min()
        assert points[28, 1] - 1.5 <= top <= points[29, 1] + 0.5  # the nose bridge, between points 28 and 29
        assert poly[:, 1].max() >= points[8, 1]  # down to the chin


def test_without_the_landmark_model_auto_draws_every_mask_by_the_box_and_says_so(tmp_path):
    """A missing model file (the setting points at it) is the fallback path: the box masks, byte for byte as
    mask_method box draws them, and one log line naming the method, the counts and why."""
    missing = tmp_path / "nowhere" / "shape_predictor_68_face_landmarks.dat"
    with dlfolio_log() as lines:
        counts = face_mask_sample.generate(tmp_path / "auto", faces=3, landmark_model=missing)
    assert counts == {"with_mask": 6, "without_mask": 6}
    assert len(lines) == 1 and "from the face box on 3" in lines[0] and "landmarks on 0 faces" in lines[0]
    assert f"no 68-point landmark model at {missing}" in lines[0] and "mask_method auto" in lines[0]
    face_mask_sample.generate(tmp_path / "box", faces=3, mask_method="box")
    assert tree_digest(tmp_path / "auto") == tree_digest(tmp_path / "box")
    # ... and with the model, landmarks draw them (other bytes), the log line says so
    with dlfolio_log() as lines:
        face_mask_sample.generate(tmp_path / "landmarks", faces=3, mask_method="landmarks")
    assert "landmarks on 3 faces, from the face box on 0" in lines[0]
    assert tree_digest(tmp_path / "landmarks" / "with_mask") != tree_digest(tmp_path / "box" / "with_mask")


def test_mask_method_landmarks_refuses_a_missing_model_naming_it(tmp_path):
    missing = tmp_path / "missing.dat"
    with pytest.raises(DlfolioError, match="mask_method is landmarks") as caught:
        face_mask_sample.generate(tmp_path / "s", faces=2, mask_method="landmarks", landmark_model=missing)
    assert str(missing) in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "s").exists()


def test_a_face_dlib_does_not_find_falls_back_to_the_box():
    faces = face_mask_sample.real_faces()[:3]
    blank = np.full_like(faces[0], 128)  # no face at all
    plan = face_mask_sample.plan_masks([*faces, blank], "auto")
    assert plan.by_landmarks == 3 and plan.points[3] is None
    assert "landmarks on 3 faces, from the face box on 1" in plan.summary() and "no face in 1" in plan.summary()


def test_the_sample_options_come_from_params_and_are_validated(tmp_path):
    """params.yaml's face-mask data section picks the method (`dlfolio data` passes it to make_sample); a
    method that does not exist is refused by name when the file loads."""
    from typing import get_args

    import yaml

    from components.projects import get_project, settings_schemas
    from components.projects.settings.face_mask import MaskSampleSettings
    from components.settings import SettingsError, load_project_settings

    # the torch- and OpenCV-free settings list the methods the sample module draws
    assert get_args(MaskSampleSettings.model_fields["mask_method"].annotation) == face_mask_sample.MASK_METHODS
    raw = yaml.safe_load(Path("params.yaml").read_text())
    assert raw["projects"]["face-mask"]["data"]["mask_method"] == "auto"
    raw["projects"]["face-mask"]["data"].update(mask_method="box", landmark_model=str(tmp_path / "gone.dat"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    settings = load_project_settings(tmp_path / "params.yaml", "face-mask", settings_schemas())
    assert settings.data.mask_method == "box"
    with dlfolio_log() as lines:
        get_project("face-mask").make_sample(tmp_path / "sample", tiny=True, settings=settings)
    assert "mask_method box" in lines[0] and "from the face box on 30" in lines[0]

    raw["projects"]["face-mask"]["data"]["mask_method"] = "lips"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SettingsError, match=r"projects\.face-mask\.data\.mask_method: expected one of"):
        load_project_settings(tmp_path / "params.yaml", "face-mask", settings_schemas())


def test_dlfolio_data_takes_the_mask_options_from_its_params_file(run_cli, tmp_path):
    """`dlfolio data --params FILE`: the face-mask section's options reach the sample (here a landmark model
    that is not there, with mask_method landmarks: refused in one line, nothing written)."""
    import yaml

    raw = yaml.safe_load(Path("params.yaml").read_text())
    missing = tmp_path / "no-such-model.dat"
    raw["projects"]["face-mask"]["data"].update(mask_method="landmarks", landmark_model=str(missing))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    root = tmp_path / "data"
    code, out, err = run_cli("data", "face-mask", "--data-root", str(root), "--params", str(tmp_path / "params.yaml"))
    assert code == 2 and f"no 68-point landmark model at {missing}" in err and err.count("\n") == 1
    assert not (root / "face-mask").exists()
