"""Settings of components/projects/facenet_verification.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from pydantic import Field, model_validator

from components.capabilities import Capability
from components.settings import ProjectSettings, Section, TrainSettings


class FaceDataSettings(Section):
    image_size: int = Field(48, ge=16, description="the net's input: the centre crop, image_size x image_size (RGB)")
    crop: float = Field(
        0.75,
        gt=0,
        le=1,
        description="share of each side kept around the centre (the face; most background goes): images are resized "
        "to image_size / crop first",
    )
    min_size: int = Field(16, ge=1, description="smallest accepted width/height in pixels")
    max_size: int = Field(4096, ge=1)
    min_images: int = Field(2, ge=2, description="images each identity folder needs (a pair; enrol + query)")
    min_identities: int = Field(6, ge=3, description="identity folders the dataset needs (train, val, test)")

    @model_validator(mode="after")
    def _sizes(self):
        if self.min_size > self.max_size:
            raise ValueError(f"min_size {self.min_size} is larger than max_size {self.max_size}")
        return self

    @property
    def frame_size(self) -> int:
        """The side images are resized to before the centre crop."""
        return round(self.image_size / self.crop)


class IdentitySplitSettings(Section):
    """Shares of the IDENTITIES (not the images): validation and test people never train."""

    val: float = Field(0.15, gt=0, lt=1, description="identities whose pairs tune the threshold and early-stop")
    test: float = Field(0.25, gt=0, lt=1, description="identities the metrics are measured on")

    @model_validator(mode="after")
    def _room_for_training(self):
        if self.val + self.test >= 1:
            raise ValueError(f"val + test is {self.val + self.test:g}: no identities left to train on")
        return self


class FaceNetModelSettings(Section):
    stem: tuple[int, int] = Field((16, 32), description="channels of the stem's two 3x3 convolutions")
    blocks: tuple[tuple[int, int, int, int, int, int], ...] = Field(
        ((16, 16, 24, 4, 8, 8), (24, 24, 40, 8, 16, 16), (32, 32, 48, 8, 16, 16)),
        min_length=1,
        description="one inception block each, max-pool between: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj)",
    )
    embedding_dim: int = Field(128, ge=2)
    dropout: float = Field(0.0, ge=0, lt=1, description="before the embedding layer")


class TripletSettings(Section):
    margin: float = Field(0.2, gt=0, description="of the triplet loss, on squared distances of unit vectors")
    images_per_identity: int = Field(4, ge=2, description="K of a P x K batch; P = train.batch_size / K")
    repeats: int = Field(1, ge=1, description="passes over the training identities per epoch")
    flip: bool = Field(True, description="mirror a random half of each batch")


class VerificationSettings(Section):
    far: float = Field(0.01, gt=0, lt=1, description="the false accept rate at which TAR is reported")
    pair_seed: int = Field(0, ge=0, description="draws the different-person pairs (as many as same-person pairs)")


class DlibArmSettings(Section):
    """dlib's pretrained 128-d face encoder as a second arm (components/pretrained/dlib_faces.py; the 5-point
    aligner, not the 68-point model, whose training data is not for commercial use)."""

    real_photos: str | None = Field(
        ".cache/face-photos",
        description="identity folders of REAL photos (absolute, or relative to the repository: `make setup` writes "
        "face-recognition 1.3.0's six photos of two people there): dlib and the net on their pairs, ~3 s; null: skip",
    )
    test_identities: bool = Field(
        False,
        description="dlib on the validation (threshold) and test people's images too, beside the net: ~0.085 s a "
        "face on the CPU, 27 s for the sample's 320",
    )
    upsample: int = Field(1, ge=0, le=3, description="times dlib's face detector upsamples an image first")
    max_side: int = Field(800, ge=64, description="real photos are shrunk to this longest side before detection")
    net_crop: float = Field(
        1.8,
        gt=1,
        description="the net's input from a real photo: the square of this many times dlib's face box around it, "
        "in grey like its training images",
    )


class FaceNetVerificationSettings(ProjectSettings):
    data: FaceDataSettings = FaceDataSettings()
    split: IdentitySplitSettings = IdentitySplitSettings()
    model: FaceNetModelSettings = FaceNetModelSettings()
    triplet: TripletSettings = TripletSettings()
    train: TrainSettings = TrainSettings(epochs=60, batch_size=32, lr=0.003, patience=20, weight_decay=1e-4)
    verification: VerificationSettings = VerificationSettings()
    examples: int = Field(6, ge=1, description="test pairs of each kind in the examples figure")
    compare_dlib: DlibArmSettings = DlibArmSettings()

    @model_validator(mode="after")
    def _whole_identities_per_batch(self):
        k = self.triplet.images_per_identity
        if self.train.batch_size % k or self.train.batch_size // k < 2:
            raise ValueError(
                f"train.batch_size {self.train.batch_size} must be a multiple of triplet.images_per_identity {k} "
                "holding at least 2 identities (P x K)"
            )
        return self


# What FaceNetVerification's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.PROMOTION_SCORING, Capability.DISTRIBUTED_TRAINING})
