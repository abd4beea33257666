"""vgg16-transfer: ten classes c0-c9 from a CSV of (subject, classname, img), VGG16 base + new head [seed 002].

Real format: the State Farm distracted-driver layout (``driver_imgs_list.csv`` + ``imgs/train/c0..c9/``).
The 80/10/10 split is grouped by subject, so no driver appears in two parts. Augmentation: rotation, shift,
flip. Head: Dense(256, ReLU) -> Dropout(0.5) -> Dense(10); early stopping and checkpoints; then the last
layers of VGG16 unfrozen at LR 1e-5. Offline sample: Fashion-MNIST's ten classes as c0-c9, synthetic subjects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.data.formats.csv_metadata import read_image_csv, validate_image_csv
from components.data.formats.images import load_images
from components.data.samples.fashion import write_driver_layout
from components.data.splits import grouped_split
from components.projects.image_classification import ImageSplits
from components.projects.settings.vgg16_transfer import Vgg16Settings
from components.projects.transfer_learning import TransferProject
from components.validation.expectations import ValidationReport


@dataclass
class SubjectSplits(ImageSplits):
    subjects: dict[str, list[str]] = field(default_factory=dict)  # split name -> its subjects

    def sizes(self) -> dict[str, int]:
        return {**super().sizes(), **{f"{name}_subjects": len(s) for name, s in self.subjects.items()}}


class Vgg16Transfer(TransferProject):
    name = "vgg16-transfer"
    summary = "VGG16 transfer learning on CSV-labelled images (c0-c9), split grouped by subject (State Farm layout)"
    Settings = Vgg16Settings

    def make_sample(self, out_dir: Path, tiny: bool = False) -> dict:
        # 38 drivers of 20 photos: 16 train, 2 validate, 20 are the test split (params.yaml's split)
        return (
            write_driver_layout(out_dir, subjects=5, per_subject_class=1) if tiny else write_driver_layout(out_dir, 38)
        )

    def label_store(self, settings, unlabelled_dir=None):
        """None: the CSV (subject, classname, img) holds the labels, not the folders; `dlfolio label` keeps a
        person's labels in state.json."""
        return None

    def validate(self, settings: Vgg16Settings) -> ValidationReport:
        d = settings.data
        report, _ = validate_image_csv(
            settings.data_dir,
            self.rules(settings),
            csv_name=d.csv,
            images_dir=d.images_dir,
            min_subjects=d.min_subjects,
        )
        return report

    def prepare(self, settings: Vgg16Settings) -> SubjectSplits:
        d = settings.data
        table = read_image_csv(settings.data_dir, d.csv, d.images_dir)
        images = load_images(settings.data_dir / d.images_dir, table, d.image_size)
        labels, subjects = table["classname"].to_numpy(), table["subject"].to_numpy()
        fractions = {"test": settings.split.test, "val": settings.split.val}
        if settings.conformal is not None and settings.conformal.calibrate_on == "held_out":
            fractions["calibration"] = settings.conformal.calibration
        split = grouped_split(subjects, fractions, settings.seed)
        pick = lambda name: (images[split[name]], labels[split[name]])  # noqa: E731
        (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = pick("train"), pick("val"), pick("test")
        X_cal, y_cal = pick("calibration") if "calibration" in split else (None, None)
        splits = SubjectSplits(
            np.array(sorted(d.classes)),
            X_tr,
            y_tr,
            X_va,
            y_va,
            X_te,
            y_te,
            table["path"].to_numpy()[split["test"]].tolist(),
            X_cal,
            y_cal,
            subjects={name: sorted(set(subjects[idx])) for name, idx in split.items()},
        )
        return self.with_calibration(splits, settings)  # calibrate_on: validation
