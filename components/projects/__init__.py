"""The catalog: every project dlfolio can run, by name.

Each entry holds the project's settings class and declared capabilities (components/projects/settings/, torch-
free) and where its code lives ("module:Class"), so that validating params.yaml (`dlfolio check`) imports no
project code and `dlfolio run P` imports P's module alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from components.capabilities import Capability
from components.errors import DlfolioError
from components.projects.settings import array_classification as arrays
from components.projects.settings import (
    autodiff_mlp,
    dinosaur_names,
    emojify,
    face_mask,
    face_mask_transfer,
    facenet_verification,
    facial_keypoints,
    image_classification,
    jazz_lstm,
    linear_regression,
    logistic_regression,
    mnist_mc_dropout,
    ner_resumes,
    nmt_dates,
    numpy_cnn,
    numpy_dnn,
    numpy_rnn,
    qa_babi,
    style_transfer,
    transfer_learning,
    transformer,
    trigger_word,
    unet_segmentation,
    vgg16_transfer,
    word_debias,
    yolo_cars,
)
from components.settings import ProjectSchema, ProjectSettings

if TYPE_CHECKING:
    from components.projects.base import Project


@dataclass(frozen=True)
class Entry:
    settings: type[ProjectSettings]
    capabilities: frozenset[Capability]
    code: str  # "module:Class" of the Project subclass, imported when the project is used


IMAGES = image_classification.CAPABILITIES  # what the image classifiers share, transfer projects included
CATALOG: dict[str, Entry] = {  # one entry a project: the catalog grows by appending
    "face-mask": Entry(face_mask.FaceMaskSettings, IMAGES, "components.projects.face_mask:FaceMask"),
    "linear-regression": Entry(
        linear_regression.LinearRegressionSettings,
        linear_regression.CAPABILITIES,
        "components.projects.linear_regression:LinearRegression",
    ),
    "logistic-regression": Entry(
        logistic_regression.LogisticRegressionSettings,
        logistic_regression.CAPABILITIES,
        "components.projects.logistic_regression:LogisticRegression",
    ),
    "autodiff-mlp": Entry(
        autodiff_mlp.AutodiffMLPSettings, autodiff_mlp.CAPABILITIES, "components.projects.autodiff_mlp:AutodiffMLP"
    ),
    "numpy-dnn": Entry(numpy_dnn.NumpyDNNSettings, numpy_dnn.CAPABILITIES, "components.projects.numpy_dnn:NumpyDNN"),
    "numpy-cnn": Entry(numpy_cnn.NumpyCNNSettings, numpy_cnn.CAPABILITIES, "components.projects.numpy_cnn:NumpyCNN"),
    "numpy-rnn": Entry(numpy_rnn.NumpyRNNSettings, numpy_rnn.CAPABILITIES, "components.projects.numpy_rnn:NumpyRNN"),
    "happy-house": Entry(
        arrays.ArrayClassificationSettings, arrays.CAPABILITIES, "components.projects.happy_house:HappyHouse"
    ),
    "mnist-dnn": Entry(
        arrays.ArrayClassificationSettings, arrays.CAPABILITIES, "components.projects.mnist_dnn:MnistDNN"
    ),
    "mnist-mc-dropout": Entry(
        mnist_mc_dropout.MnistMCDropoutSettings,
        arrays.CAPABILITIES,
        "components.projects.mnist_mc_dropout:MnistMCDropout",
    ),
    "resnet50": Entry(
        arrays.ArrayClassificationSettings, arrays.CAPABILITIES, "components.projects.resnet50:ResNet50Signs"
    ),
    "mobilenetv2-transfer": Entry(
        transfer_learning.TransferSettings, IMAGES, "components.projects.mobilenetv2_transfer:MobileNetV2Transfer"
    ),
    "vgg16-transfer": Entry(vgg16_transfer.Vgg16Settings, IMAGES, "components.projects.vgg16_transfer:Vgg16Transfer"),
    "face-mask-transfer": Entry(
        face_mask_transfer.FaceMaskTransferSettings, IMAGES, "components.projects.face_mask_transfer:FaceMaskTransfer"
    ),
    "word-debias": Entry(
        word_debias.WordDebiasSettings, word_debias.CAPABILITIES, "components.projects.word_debias:WordDebias"
    ),
    "emojify": Entry(emojify.EmojifySettings, emojify.CAPABILITIES, "components.projects.emojify:Emojify"),
    "nmt-dates": Entry(nmt_dates.NmtDatesSettings, nmt_dates.CAPABILITIES, "components.projects.nmt_dates:NmtDates"),
    "unet-segmentation": Entry(
        unet_segmentation.UNetSegmentationSettings,
        unet_segmentation.CAPABILITIES,
        "components.projects.unet_segmentation:UNetSegmentation",
    ),
    "transformer": Entry(
        transformer.TransformerSettings, transformer.CAPABILITIES, "components.projects.transformer:TransformerProject"
    ),
    "style-transfer": Entry(
        style_transfer.StyleTransferSettings,
        style_transfer.CAPABILITIES,
        "components.projects.style_transfer:StyleTransfer",
    ),
    "jazz-lstm": Entry(jazz_lstm.JazzLSTMSettings, jazz_lstm.CAPABILITIES, "components.projects.jazz_lstm:JazzLSTM"),
    "yolo-cars": Entry(yolo_cars.YoloCarsSettings, yolo_cars.CAPABILITIES, "components.projects.yolo_cars:YoloCars"),
    "qa-babi": Entry(qa_babi.QaBabiSettings, qa_babi.CAPABILITIES, "components.projects.qa_babi:QaBabi"),
    "trigger-word": Entry(
        trigger_word.TriggerWordSettings, trigger_word.CAPABILITIES, "components.projects.trigger_word:TriggerWord"
    ),
    "facial-keypoints": Entry(
        facial_keypoints.FacialKeypointsSettings,
        facial_keypoints.CAPABILITIES,
        "components.projects.facial_keypoints:FacialKeypoints",
    ),
    "dinosaur-names": Entry(
        dinosaur_names.DinosaurNamesSettings,
        dinosaur_names.CAPABILITIES,
        "components.projects.dinosaur_names:DinosaurNames",
    ),
    "ner-resumes": Entry(
        ner_resumes.NerResumesSettings, ner_resumes.CAPABILITIES, "components.projects.ner_resumes:NerResumes"
    ),
    "facenet-verification": Entry(
        facenet_verification.FaceNetVerificationSettings,
        facenet_verification.CAPABILITIES,
        "components.projects.facenet_verification:FaceNetVerification",
    ),
}


class UnknownProjectError(DlfolioError, LookupError):
    pass


class CatalogMismatchError(DlfolioError, TypeError):
    """A project class whose name, settings or capabilities differ from its catalog entry."""


_loaded: dict[str, Project] = {}


def get_project(name: str) -> Project:
    """The project ``name``, importing its module (and only that one)."""
    if name not in _loaded:
        try:
            entry = CATALOG[name]
        except KeyError:
            raise UnknownProjectError(
                f"unknown project {name!r}; known projects: {', '.join(sorted(CATALOG))}"
            ) from None
        module, _, cls = entry.code.partition(":")
        project = getattr(import_module(module), cls)()
        if (project.name, project.Settings, project.capabilities) != (name, entry.settings, entry.capabilities):
            raise CatalogMismatchError(
                f"{entry.code}: its name, Settings or capabilities differ from CATALOG[{name!r}]"
            )
        _loaded[name] = project
    return _loaded[name]


def settings_schemas() -> dict[str, ProjectSchema]:
    """Each project's settings class and declared capabilities: what params.yaml is validated against."""
    return {name: ProjectSchema(name, entry.settings, entry.capabilities) for name, entry in CATALOG.items()}


def __getattr__(attr: str) -> Any:
    # PROJECTS (every project, instantiated) imports all 25 project modules and torch: only when asked for, so
    # that `dlfolio check` and `dlfolio run P` do not pay for it. Project and Trained import pandas.
    if attr == "PROJECTS":
        return {name: get_project(name) for name in CATALOG}
    if attr in ("Project", "Trained"):
        from components.projects import base

        return getattr(base, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


__all__ = [
    "CATALOG",
    "PROJECTS",
    "Entry",
    "Project",
    "Trained",
    "UnknownProjectError",
    "get_project",
    "settings_schemas",
]
