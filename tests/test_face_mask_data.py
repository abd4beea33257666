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
