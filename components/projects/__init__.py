"""The catalog: every project dlfolio can run, by name."""

from __future__ import annotations

from ..settings import ProjectSettings
from .base import Project, Trained
from .autodiff_mlp import AutodiffMLP
from .emojify import Emojify
from .face_mask import FaceMask
from .face_mask_transfer import FaceMaskTransfer
from .facial_keypoints import FacialKeypoints
from .linear_regression import LinearRegression
from .logistic_regression import LogisticRegression
from .numpy_dnn import NumpyDNN
from .numpy_cnn import NumpyCNN
from .numpy_rnn import NumpyRNN
from .qa_babi import QaBabi
from .nmt_dates import NmtDates
from .happy_house import HappyHouse
from .jazz_lstm import JazzLSTM
from .mnist_dnn import MnistDNN
from .mnist_mc_dropout import MnistMCDropout
from .mobilenetv2_transfer import MobileNetV2Transfer
from .resnet50 import ResNet50Signs
from .unet_segmentation import UNetSegmentation
from .vgg16_transfer import Vgg16Transfer
from .style_transfer import StyleTransfer
from .transformer import TransformerProject
from .trigger_word import TriggerWord
from .word_debias import WordDebias
from .yolo_cars import YoloCars

PROJECTS: dict[str, Project] = {p.name: p for p in [  # one a line: the catalog grows by appending
    FaceMask(),
    LinearRegression(),
    LogisticRegression(),
    AutodiffMLP(),
    NumpyDNN(),
    NumpyCNN(),
    NumpyRNN(),
    HappyHouse(),
    MnistDNN(),
    MnistMCDropout(),
    ResNet50Signs(),
    MobileNetV2Transfer(),
    Vgg16Transfer(),
    FaceMaskTransfer(),
    WordDebias(),
    Emojify(),
    NmtDates(),
    UNetSegmentation(),
    TransformerProject(),
    StyleTransfer(),
    JazzLSTM(),
    YoloCars(),
    QaBabi(),
    TriggerWord(),
    FacialKeypoints(),
]}


class UnknownProjectError(LookupError):
    pass


def get_project(name: str) -> Project:
    try:
        return PROJECTS[name]
    except KeyError:
        raise UnknownProjectError(f"unknown project {name!r}; known projects: {', '.join(sorted(PROJECTS))}") from None


def settings_schemas() -> dict[str, type[ProjectSettings]]:
    return {name: project.Settings for name, project in PROJECTS.items()}


__all__ = ["PROJECTS", "Project", "Trained", "UnknownProjectError", "get_project", "settings_schemas"]
