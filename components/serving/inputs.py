"""What a served model is handed, turned into what its net takes: the one place predictors coerce inputs.

A registered model is called with whatever its caller has: a DataFrame (``mlflow models serve`` with a column
signature, a notebook), a NumPy array (a tensor signature), a list, one string or one image. Each function here
takes all of these for one kind of input and raises ``ValueError`` naming what was expected, so a bad request
says what to send instead of failing inside the net.

No MLflow or torch here: predictors are unpickled in the serving process, which imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def is_missing(value) -> bool:
    """None or NaN: what a DataFrame cell holds where the caller left it empty."""
    return value is None or (isinstance(value, (float, np.floating)) and np.isnan(value))


def _text(value) -> str:
    if is_missing(value):
        return ""
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else str(value)


def _named(columns: Sequence[str] | Mapping[str, str]) -> str:
    named = [f"'{c}'" + (f" ({columns[c]})" if isinstance(columns, Mapping) else "") for c in columns]
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


def require_columns(frame: pd.DataFrame, columns: Sequence[str] | Mapping[str, str]) -> None:
    """Raise naming the columns expected (with what each holds, where ``columns`` maps them to that) and those
    the frame has."""
    missing = [c for c in columns if c not in frame.columns]
    if len(columns) == 1 and missing:
        raise ValueError(f"expected a {_named(columns)} column, got columns {list(frame.columns)}")
    if missing:
        raise ValueError(f"expected columns {_named(columns)}, missing {missing}, got columns {list(frame.columns)}")


def as_text_list(inputs, column: str) -> list[str]:
    """One string per row: a DataFrame's ``column``, or a list, array, Series or single string (bytes are read as
    UTF-8). An empty cell (None, NaN) is ""."""
    if isinstance(inputs, pd.DataFrame):
        require_columns(inputs, [column])
        inputs = inputs[column]
    if isinstance(inputs, (str, bytes, bytearray)):
        inputs = [inputs]
    return [_text(v) for v in np.ravel(np.asarray(inputs, dtype=object))]


def as_frame(inputs, columns: Sequence[str] | Mapping[str, str]) -> pd.DataFrame:
    """A DataFrame holding ``columns`` (a mapping names what each holds, for the error): a DataFrame, a dict of
    columns or a list of row dicts; where one column is asked for, a plain list, array or string fills it."""
    names = list(columns)
    if not isinstance(inputs, pd.DataFrame):
        if isinstance(inputs, dict) or (isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], dict)):
            inputs = pd.DataFrame(inputs)
        elif len(names) == 1:
            inputs = pd.DataFrame({names[0]: as_text_list(inputs, names[0])})
        else:
            raise ValueError(
                f"expected a DataFrame (or row dicts) with columns {_named(columns)}, got {type(inputs).__name__}"
            )
    require_columns(inputs, columns)
    return inputs


def column_values(frame: pd.DataFrame, column: str, default) -> list:
    """The column's values with ``default`` for an empty cell, or for every row where the column is absent."""
    if column not in frame:
        return [default] * len(frame)
    return [default if is_missing(v) else v for v in frame[column]]


def as_float_matrix(inputs, columns: Sequence[str]) -> np.ndarray:
    """float64 (n, len(columns)): a DataFrame's ``columns`` in that order, or numbers of shape (n,), (n, k) or one
    number when ``k == len(columns)`` (a single feature takes any shape)."""
    if isinstance(inputs, pd.DataFrame):
        require_columns(inputs, columns)
        inputs = inputs[list(columns)]
    try:
        x = np.asarray(inputs, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"expected numbers for {list(columns)}, got {type(inputs).__name__}") from None
    k = len(columns)
    if x.size % k or (k > 1 and x.ndim > 1 and x.shape[-1] != k):
        raise ValueError(f"expected (n, {k}) numbers for columns {list(columns)}, got shape {x.shape}")
    return x.reshape(-1, k)


def as_images(inputs, channels: int | None = 3) -> list[np.ndarray]:
    """uint8 images, each (H, W, channels), or (H, W) where ``channels`` is 1 or None (grey): from an array
    (N, H, W[, C]), one image, or a list of images of different sizes. An image with another channel count is
    converted (grey, RGB, RGBA) as PIL converts it."""
    single = 2 if channels in (None, 1) else 3
    expected = "uint8 images " + ("(N, H, W)" if single == 2 else f"(N, H, W, {channels})") + " or one image"
    try:
        batch = np.asarray(inputs, dtype=np.uint8)
    except (TypeError, ValueError):  # ragged (images of different sizes), or not numbers at all
        try:
            images = [np.asarray(x, dtype=np.uint8) for x in inputs]
        except (TypeError, ValueError):
            raise ValueError(f"expected {expected}, got {type(inputs).__name__} that is not numbers") from None
    else:
        if batch.ndim not in range(single, 5):  # grey batches may come with a channel axis, (N, H, W, C)
            raise ValueError(f"expected {expected}, got shape {batch.shape}")
        images = list(batch[None] if batch.ndim == single else batch)
    if any(x.ndim not in (2, 3) for x in images):
        raise ValueError(f"expected {expected}, got images of shapes {[x.shape for x in images][:5]}")
    return [_with_channels(x, channels) for x in images]


def _with_channels(image: np.ndarray, channels: int | None) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    have = 1 if image.ndim == 2 else image.shape[2]
    want = channels or 1
    if have == want:
        return image
    from PIL import Image

    if have not in (1, 3, 4) or want not in (1, 3, 4):
        raise ValueError(f"expected images with {want} channel(s), got shape {image.shape}")
    return np.asarray(Image.fromarray(image).convert({1: "L", 3: "RGB", 4: "RGBA"}[want]))


def resize_images(images: Sequence[np.ndarray], size: int | tuple[int, int]) -> np.ndarray:
    """The images stacked at ``size`` (side, or (height, width)); one of another size is resized bilinearly with
    PIL, as the training loaders (``load_images``, ``load_pairs``) resize, so the net sees what it trained on."""
    from PIL import Image

    h, w = (size, size) if isinstance(size, int) else size
    return np.stack(
        [x if x.shape[:2] == (h, w) else np.asarray(Image.fromarray(x).resize((w, h), Image.BILINEAR)) for x in images]
    )


def as_image_batch(inputs, size: int | tuple[int, int], channels: int | None = 3) -> np.ndarray:
    """uint8 (N, h, w, channels), or (N, h, w) for grey (channels 1 or None): ``as_images`` at the size the net
    takes."""
    return resize_images(as_images(inputs, channels), size)


def decode_image(value, channels: int | None = 3) -> np.ndarray:
    """One uint8 image (H, W, channels) from a base64 string (or bytes) of an image file (PNG, JPEG, ...), or from
    an array (H, W[, C]) as ``as_images`` takes it."""
    import base64
    import binascii
    import io

    from PIL import Image, UnidentifiedImageError

    if isinstance(value, (str, bytes, bytearray)):
        try:
            with Image.open(io.BytesIO(base64.b64decode(value, validate=True))) as im:
                return _with_channels(np.asarray(im.convert("RGB")), channels)
        except (binascii.Error, UnidentifiedImageError, OSError, ValueError):
            raise ValueError("expected a base64-encoded image file (PNG, JPEG, ...)") from None
    (image,) = as_images(np.asarray(value, dtype=np.uint8)[None], channels)
    return image


def encode_png(image: np.ndarray) -> str:
    """A uint8 image (H, W) or (H, W, 3) as a base64 PNG: what ``decode_image`` reads back, bit for bit."""
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
