"""face-mask: with_mask / without_mask classification, the flagship pipeline [seed 004]."""

from __future__ import annotations

from pathlib import Path

from components.data.samples import face_mask as face_mask_sample
from components.projects.image_classification import ImageClassificationProject


class FaceMask(ImageClassificationProject):
    name = "face-mask"
    summary = "Face-mask detector: custom CNN with BatchNorm, AdamW, LR schedule, clipping (image folder)"
    primary_metric = "f1"

    def make_sample(self, out_dir: Path, tiny: bool = False) -> dict:
        return face_mask_sample.generate(out_dir, faces=30 if tiny else None)
