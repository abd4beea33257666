"""The catalog: every project dlfolio can run, by name."""

from __future__ import annotations

from components.errors import DlfolioError
from components.projects.autodiff_mlp import AutodiffMLP
from components.projects.base import Project, Trained
from components.projects.emojify import Emojify
from components.projects.face_mask import FaceMask
from components.projects.face_mask_transfer import FaceMaskTransfer
from components.projects.facial_keypoints import FacialKeypoints
from components.projects.happy_house import HappyHouse
from components.projects.jazz_lstm import JazzLSTM
from components.projects.linear_regression import LinearRegression
from components.projects.logistic_regression import LogisticRegression
from components.projects.mnist_dnn import MnistDNN
from components.projects.mnist_mc_dropout import MnistMCDropout
from components.projects.mobilenetv2_transfer import MobileNetV2Transfer
from components.projects.nmt_dates import NmtDates
from components.projects.numpy_cnn import NumpyCNN
from components.projects.numpy_dnn import NumpyDNN
from components.projects.numpy_rnn import NumpyRNN
from components.projects.qa_babi import QaBabi
from components.projects.resnet50 import ResNet50Signs
from components.projects.style_transfer import StyleTransfer
from components.projects.transformer import TransformerProject
from components.projects.trigger_word import TriggerWord
from components.projects.unet_segmentation import UNetSegmentation
from components.projects.vgg16_transfer import Vgg16Transfer
from components.projects.word_debias import WordDebias
from components.projects.yolo_cars import YoloCars
from components.settings import ProjectSchema

PROJECTS: dict[str, Project] = {
    p.name: p
    for p in [  # one a line: the catalog grows by appending
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
    ]
}


class UnknownProjectError(DlfolioError, LookupError):
    pass


def get_project(name: str) -> Project:
    try:
        return PROJECTS[name]
    except KeyError:
        raise UnknownProjectError(f"unknown project {name!r}; known projects: {', '.join(sorted(PROJECTS))}") from None


def settings_schemas() -> dict[str, ProjectSchema]:
    """Each project's settings class and declared capabilities: what params.yaml is validated against."""
    return {name: ProjectSchema(name, project.Settings, project.capabilities) for name, project in PROJECTS.items()}


__all__ = ["PROJECTS", "Project", "Trained", "UnknownProjectError", "get_project", "settings_schemas"]
