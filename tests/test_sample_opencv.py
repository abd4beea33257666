"""A face sample on an OpenCV without CascadeClassifier (the GPU image's) fails with one line naming the part."""

import cv2
import pytest

from components.data.samples import face_mask as face_mask_sample
from components.data.samples import happy_house as happy_house_sample
from components.errors import DlfolioError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("generate", [face_mask_sample.generate, happy_house_sample.generate])
def test_a_face_sample_without_opencvs_cascade_says_what_is_missing(generate, tmp_path, monkeypatch):
    monkeypatch.delattr(cv2, "CascadeClassifier")
    with pytest.raises(DlfolioError, match="CascadeClassifier") as caught:
        generate(tmp_path / "sample")
    message = str(caught.value)
    assert "\n" not in message and "objdetect" in message and "dlfolio data" in message
