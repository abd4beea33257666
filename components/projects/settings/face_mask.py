"""Settings of components/projects/face_mask.py (and the face-mask sample's options, which face-mask-transfer
shares), torch-free, so that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.projects.settings.image_classification import ImageClassificationSettings, ImageDataSettings
from components.settings import Section


class MaskSampleSettings(Section):
    """Where the offline sample (`dlfolio data face-mask`) draws its masks: components/data/samples/face_mask.py."""

    mask_method: Literal["landmarks", "box", "auto"] = Field(
        "auto",
        description="landmarks: along dlib's 68 facial landmarks (jaw line up to the nose bridge; needs dlib-bin and "
        "face-recognition-models, whose 68-point model's training data, iBUG 300-W, is not for commercial use); "
        "box: at fixed places in the face crop (the sample as before landmarks); auto: landmarks where they install",
    )
    landmark_model: str | None = Field(
        None,
        description="a dlib 68-point shape predictor file (relative paths from the working directory); "
        "null: face-recognition-models' shape_predictor_68_face_landmarks.dat",
    )


class FaceMaskDataSettings(ImageDataSettings, MaskSampleSettings):
    """The image folder's rules, and the options of the sample written into it."""


class FaceMaskSettings(ImageClassificationSettings):
    data: FaceMaskDataSettings
