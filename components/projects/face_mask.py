"""face-mask: with_mask / without_mask classification, the flagship pipeline [seed 004]."""

from __future__ import annotations

from pathlib import Path

from components.data.samples import face_mask as face_mask_sample
from components.projects.image_classification import ImageClassificationProject
from components.projects.settings.face_mask import FaceMaskSettings, MaskSampleSettings


class FaceMask(ImageClassificationProject):
    name = "face-mask"
    summary = "Face-mask detector: custom CNN with BatchNorm, AdamW, LR schedule, clipping (image folder)"
    primary_metric = "f1"
    Settings = FaceMaskSettings

    def make_sample(self, out_dir: Path, tiny: bool = False, settings: FaceMaskSettings | None = None) -> dict:
        """The sample with the mask options of ``settings.data`` (`dlfolio data` passes params.yaml's); None: the
        defaults (mask_method auto)."""
        options = settings.data if settings is not None else MaskSampleSettings()
        return face_mask_sample.generate(
            out_dir,
            faces=30 if tiny else None,
            mask_method=options.mask_method,
            landmark_model=options.landmark_model,
        )
