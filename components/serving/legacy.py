"""Unpickling predictors saved before components/ moved into subpackages (main d432da5 and earlier).

A pickle names each class by module path, e.g. ``components.estimators.TorchImageClassifier``; that module is
now ``components.training.estimators``. While ``old_module_names()`` is active, every old path resolves to its
new module, so a registered model version made before the move still loads in a process that already imports
the new layout (``dlfolio promote``, a notebook). A fresh ``mlflow models serve`` does not need this: MLflow puts
the code bundled with each model version first on ``sys.path``. The same goes for the settings classes that moved
out of the project modules after main 1dc69b2 (SETTINGS_MOVED).

    with old_module_names():
        predictor = joblib.load(path)
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

# old module -> the module that holds its classes now (the move of commit 0f37c69)
MOVED: dict[str, str] = {
    "components.training": "components.training.loop",
    "components.device_data": "components.training.device_data",
    "components.augment": "components.training.augment",
    "components.distributed": "components.training.distributed",
    "components.estimators": "components.training.estimators",
    "components.transfer_estimator": "components.training.transfer_estimator",
    "components.transfer_training": "components.training.transfer",
    "components.yolo_training": "components.training.detection",
    "components.seq2seq_training": "components.training.seq2seq",
    "components.token_lm": "components.training.token_lm",
    "components.keypoint_training": "components.training.keypoints",
    "components.style_transfer": "components.training.style_transfer",
    "components.validation": "components.validation.expectations",
    "components.active": "components.active.loop",
    "components.active_stage": "components.active.stage",
    "components.active_labels": "components.active.labels",
    "components.active_report": "components.active.report",
    "components.active_settings": "components.active.settings",
    "components.active_strategies": "components.active.strategies",
    "components.conformal": "components.conformal.calibration",
    "components.conformal_stage": "components.conformal.stage",
    "components.evaluation": "components.evaluation.report",
    "components.uncertainty": "components.evaluation.uncertainty",
    "components.detection": "components.metrics.detection",
    "components.segmentation": "components.metrics.segmentation",
    "components.trigger_metrics": "components.metrics.trigger",
    "components.tracking": "components.tracking.runs",
    "components.registry": "components.tracking.registry",
    "components.outputs": "components.tracking.outputs",
    "components.sweep": "components.tracking.sweep",
    "components.serving": "components.serving.predictors",
    "components.pyfunc_model": "components.serving.pyfunc_model",
    "components.data.arrays": "components.data.formats.arrays",
    "components.data.babi": "components.data.formats.babi",
    "components.data.box_annotations": "components.data.formats.box_annotations",
    "components.data.catvnoncat": "components.data.formats.catvnoncat",
    "components.data.csv_metadata": "components.data.formats.csv_metadata",
    "components.data.date_pairs": "components.data.formats.date_pairs",
    "components.data.emoji_csv": "components.data.formats.emoji_csv",
    "components.data.facial_keypoints": "components.data.formats.facial_keypoints",
    "components.data.glove_text": "components.data.formats.glove_text",
    "components.data.h5_images": "components.data.formats.h5_images",
    "components.data.idx": "components.data.formats.idx",
    "components.data.images": "components.data.formats.images",
    "components.data.midi_melodies": "components.data.formats.midi_melodies",
    "components.data.mnist_arrays": "components.data.formats.mnist_arrays",
    "components.data.name_lines": "components.data.formats.name_lines",
    "components.data.parallel_text": "components.data.formats.parallel_text",
    "components.data.segmentation_masks": "components.data.formats.segmentation_masks",
    "components.data.style_images": "components.data.formats.style_images",
    "components.data.temperatures": "components.data.formats.temperatures",
    "components.data.text_lines": "components.data.formats.text_lines",
    "components.data.trigger_audio": "components.data.formats.trigger_audio",
    "components.data.errors": "components.data.formats.errors",
    "components.data.car_scenes_sample": "components.data.samples.car_scenes",
    "components.data.digit_images": "components.data.samples.digit_images",
    "components.data.face_mask_sample": "components.data.samples.face_mask",
    "components.data.facial_keypoints_sample": "components.data.samples.facial_keypoints",
    "components.data.fashion_samples": "components.data.samples.fashion",
    "components.data.happy_house_sample": "components.data.samples.happy_house",
    "components.data.segmentation_sample": "components.data.samples.segmentation",
    "components.data.signs_sample": "components.data.samples.signs",
}


# module that still exists -> the module its settings classes moved to after main 1dc69b2 (so that `dlfolio check`
# imports no torch): while ``old_module_names()`` is active the old module lends the names it no longer has, e.g.
# ``components.projects.image_classification.ModelSettings`` inside a pickled TorchImageClassifier
SETTINGS_MOVED: dict[str, str] = {
    "components.conformal.calibration": "components.conformal.settings",
    "components.projects.array_classification": "components.projects.settings.array_classification",
    "components.projects.autodiff_mlp": "components.projects.settings.autodiff_mlp",
    "components.projects.emojify": "components.projects.settings.emojify",
    "components.projects.face_mask_transfer": "components.projects.settings.face_mask_transfer",
    "components.projects.facial_keypoints": "components.projects.settings.facial_keypoints",
    "components.projects.image_classification": "components.projects.settings.image_classification",
    "components.projects.jazz_lstm": "components.projects.settings.jazz_lstm",
    "components.projects.linear_regression": "components.projects.settings.linear_regression",
    "components.projects.logistic_regression": "components.projects.settings.logistic_regression",
    "components.projects.mnist_mc_dropout": "components.projects.settings.mnist_mc_dropout",
    "components.projects.nmt_dates": "components.projects.settings.nmt_dates",
    "components.projects.numpy_cnn": "components.projects.settings.numpy_cnn",
    "components.projects.numpy_dnn": "components.projects.settings.numpy_dnn",
    "components.projects.numpy_rnn": "components.projects.settings.numpy_rnn",
    "components.projects.qa_babi": "components.projects.settings.qa_babi",
    "components.projects.style_transfer": "components.projects.settings.style_transfer",
    "components.projects.transfer_learning": "components.projects.settings.transfer_learning",
    "components.projects.transformer": "components.projects.settings.transformer",
    "components.projects.trigger_word": "components.projects.settings.trigger_word",
    "components.projects.unet_segmentation": "components.projects.settings.unet_segmentation",
    "components.projects.vgg16_transfer": "components.projects.settings.vgg16_transfer",
    "components.projects.word_debias": "components.projects.settings.word_debias",
    "components.projects.yolo_cars": "components.projects.settings.yolo_cars",
}


@dataclass
class EpochResult:
    """An epoch of the old classification loop, as pickled inside a fitted estimator's ``fit_result_``; today's
    ``FitResult.history`` holds plain dict rows instead. Only unpickling needs this class."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float
    train_seconds: float = 0.0

    def __getitem__(self, key: str):  # reads like today's dict rows
        return asdict(self)[key]


@contextmanager
def old_module_names() -> Iterator[None]:
    """Make the pre-move module paths resolve for the duration of the block; undo it after.

    An old module that no longer exists (``components.estimators``) is an alias of its new module in
    ``sys.modules``. A module whose settings classes moved (SETTINGS_MOVED) lends them for the block. An old module whose name is now a package (``components.serving``) stays the package, so its
    submodules still import, and lends the names of its new module for the block."""
    new_modules = {old: importlib.import_module(new) for old, new in MOVED.items()}  # before any name is swapped
    saved = {old: sys.modules.get(old) for old in MOVED}
    lent: list[tuple[types.ModuleType, str]] = []
    try:
        for old, new in SETTINGS_MOVED.items():
            module, settings = importlib.import_module(old), importlib.import_module(new)
            for name, value in vars(settings).items():
                if not name.startswith("_") and not hasattr(module, name):
                    setattr(module, name, value)
                    lent.append((module, name))
        for old, new in new_modules.items():
            package = sys.modules.get(old)
            if package is not None and hasattr(package, "__path__"):
                names = {k: v for k, v in vars(new).items() if not k.startswith("_")}
                if old == "components.training":
                    names["EpochResult"] = EpochResult  # the old loop's epoch rows, pickled in fit_result_
                for name, value in names.items():
                    if not hasattr(package, name):
                        setattr(package, name, value)
                        lent.append((package, name))
            else:
                sys.modules[old] = new
        yield
    finally:
        for package, name in lent:
            delattr(package, name)
        for old, module in saved.items():
            if module is None:
                sys.modules.pop(old, None)
            elif not hasattr(module, "__path__"):
                sys.modules[old] = module


def load_predictor(path: str):
    """``joblib.load`` that also reads predictors pickled under the old module paths.

    Today's pickles load as they are; only one that names a moved module or class takes the slower path, which
    imports every new module (~5 s, paid before by each model's registration check)."""
    import joblib

    try:
        return joblib.load(path)
    except (ModuleNotFoundError, AttributeError):
        with old_module_names():
            return joblib.load(path)
