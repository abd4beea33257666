"""The networks params.yaml can name, and what checking a ``model:`` section needs to know of them, torch-free.

A builder is named by where its class lives ("module:Class"): ``components.models.BUILDERS`` imports them from
here when a model is built, while ``dlfolio check`` reads each builder's ``__init__`` signature from its source
file (``ast``) instead, so validating params.yaml imports no torch.
"""

from __future__ import annotations

import ast
import inspect
import pathlib
import typing
from collections.abc import Mapping
from functools import cache
from importlib.util import find_spec
from typing import Any

BUILDER_PATHS: dict[str, str] = {  # model name -> its builder class, "module:Class"
    "mask_cnn": "components.models.cnn:MaskCNN",
    "mlp": "components.models.mlp:MLP",
    "mc_dropout_cnn": "components.models.mc_dropout_cnn:MCDropoutCNN",
    "gal_cnn": "components.models.mc_dropout_cnn:GalCNN",
    "happy_cnn": "components.models.happy_cnn:HappyCNN",
    "resnet50": "components.models.resnet:ResNet50",
    "transfer": "components.models.transfer:TransferNet",
}

# Smallest input (px) each transfer backbone's base accepts before its pooling runs out
# (components/models/transfer.py BACKBONES reads it from here).
BACKBONE_MIN_SIZES: dict[str, int] = {
    "vgg16": 32,
    "mobilenet_v2": 32,
    "resnet50": 32,
    "inception_v3": 75,
    "efficientnet_lite0": 32,
}

FROM_THE_DATA = ("num_classes", "in_channels")  # the estimator passes these, from the labels and the images

# What a builder's annotations may name: the builtins (eval's default) and these.
ANNOTATION_NAMES: dict[str, Any] = {
    **{name: getattr(typing, name) for name in typing.__all__},
    "Path": pathlib.Path,
}


def builder_name(name: str) -> str:
    """The class name of model ``name``'s builder, as error messages say it."""
    return BUILDER_PATHS[name].rpartition(":")[2]


def _init_of(name: str) -> ast.FunctionDef:
    module, _, cls = BUILDER_PATHS[name].partition(":")
    spec = find_spec(module)  # finds the file without running it (the parent packages are torch-free)
    if spec is None or spec.origin is None:
        raise LookupError(f"model {name!r}: module {module} not found")
    tree = ast.parse(pathlib.Path(spec.origin).read_text(), spec.origin)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    return item
            raise LookupError(f"model {name!r}: {cls} in {spec.origin} defines no __init__ of its own")
    raise LookupError(f"model {name!r}: no class {cls} in {spec.origin}")


@cache
def builder_arguments(name: str) -> dict[str, tuple[Any, Any]]:
    """The keyword arguments ``model.kwargs`` may give model ``name``: argument -> (type, default), the type
    evaluated from the builder's annotation (``inspect.Parameter.empty`` where it has none or no default), so
    params.yaml can be checked when it loads instead of inside training. Read from the source, as
    ``inspect.signature`` and ``typing.get_type_hints`` would give them (tests/test_model_catalog.py checks)."""
    args = _init_of(name).args
    positional = args.posonlyargs + args.args
    defaults = [inspect.Parameter.empty] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = list(zip(args.args, defaults[len(args.posonlyargs) :]))[1:]  # without self
    params += list(zip(args.kwonlyargs, args.kw_defaults))

    def annotation(node: ast.expr | None) -> Any:
        if node is None:
            return inspect.Parameter.empty
        text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ast.unparse(node)
        return eval(text, dict(ANNOTATION_NAMES))  # names a builder annotates with; a new one fails the test

    return {
        arg.arg: (
            annotation(arg.annotation),
            inspect.Parameter.empty
            if default is None or default is inspect.Parameter.empty
            # a kw-only argument without a default has None in kw_defaults; a default of None is a Constant
            else ast.literal_eval(default),
        )
        for arg, default in params
        if arg.arg not in FROM_THE_DATA
    }


def input_size_problem(name: str, kwargs: Mapping[str, Any], image_size: int, channels: int) -> tuple[str, str] | None:
    """Why model ``name`` built with ``kwargs`` would crash on (image_size, image_size, channels) inputs, as
    (the ``kwargs`` key at fault or '' for the image size, why); None when it takes them. Checked when
    params.yaml loads, so the mismatch does not surface at the first forward pass."""
    args = {k: default for k, (_, default) in builder_arguments(name).items()} | dict(kwargs)
    pools = {"mask_cnn": args.get("depth"), "mc_dropout_cnn": 2}.get(name)  # 2x2 max pools, each halving
    if pools is not None and image_size < 2**pools:
        return "", f"{builder_name(name)} pools {pools} times, so it needs images of at least {2**pools} px"
    if name in ("happy_cnn", "gal_cnn") and args["image_size"] != image_size:  # its dense layer is sized by it
        return "image_size", (
            f"{builder_name(name)} is built for {args['image_size']} px images but the "
            f"data are resized to {image_size} px (data.image_size)"
        )
    if name == "mlp" and args["in_features"] != image_size * image_size * channels:
        return "in_features", (
            f"the flattened images have {image_size}*{image_size}*{channels} = "
            f"{image_size * image_size * channels} values, not {args['in_features']}"
        )
    if name == "transfer":
        smallest = BACKBONE_MIN_SIZES[args["backbone"]]
        if image_size < smallest:
            return "backbone", f"{args['backbone']} needs images of at least {smallest} px"
    return None
