"""The served models' input coercions: every form a caller may send, and errors that say what to send."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.serving.inputs import as_float_matrix, as_frame, as_image_batch, as_images, as_text_list, column_values

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "inputs",
    [
        ["3 may 1979", "", "tue 4 jan"],
        np.array(["3 may 1979", "", "tue 4 jan"]),
        np.array([["3 may 1979"], [""], ["tue 4 jan"]], dtype=object),
        pd.Series(["3 may 1979", None, "tue 4 jan"]),
        pd.DataFrame({"human": ["3 may 1979", np.nan, "tue 4 jan"], "other": [1, 2, 3]}),
        [b"3 may 1979", None, b"tue 4 jan"],
    ],
    ids=["list", "array", "column-array", "series", "frame", "bytes"],
)
def test_text_comes_out_one_string_per_row_with_empty_cells_as_empty_strings(inputs):
    assert as_text_list(inputs, "human") == ["3 may 1979", "", "tue 4 jan"]


def test_one_string_is_one_row_and_a_frame_without_the_column_names_it():
    assert as_text_list("hello", "sentence") == ["hello"]
    with pytest.raises(ValueError, match=r"expected a 'sentence' column, got columns \['text'\]"):
        as_text_list(pd.DataFrame({"text": ["hi"]}), "sentence")


def test_a_frame_comes_from_rows_columns_or_for_one_column_a_plain_list():
    rows = as_frame([{"story": "Mary went home.", "question": "Where is Mary?"}], ["story", "question"])
    assert rows.to_dict("list") == {"story": ["Mary went home."], "question": ["Where is Mary?"]}
    assert as_frame({"prefix": ["72/1"], "length": [4]}, ["prefix"])["length"].tolist() == [4]
    assert as_frame(["72/1 71/0.5", None], ["prefix"])["prefix"].tolist() == ["72/1 71/0.5", ""]


def test_a_frame_missing_columns_says_which_and_what_they_hold():
    with pytest.raises(
        ValueError,
        match=r"expected columns 'content' \(base64 image\) and 'style' \(style name\), "
        r"missing \['style'\], got columns \['content'\]",
    ):
        as_frame(pd.DataFrame({"content": ["..."]}), {"content": "base64 image", "style": "style name"})
    with pytest.raises(
        ValueError,
        match=r"expected a DataFrame \(or row dicts\) with columns 'story' and 'question', "
        r"got list",
    ):
        as_frame(["Mary went home."], ["story", "question"])


def test_column_values_fill_empty_cells_and_absent_columns_with_the_default():
    frame = pd.DataFrame({"length": [3, np.nan, None]}, dtype=object)
    assert column_values(frame, "length", 8) == [3, 8, 8]
    assert column_values(frame, "temperature", 1.0) == [1.0, 1.0, 1.0]


def test_numbers_become_an_n_by_k_float_matrix_and_a_frame_gives_its_columns_in_order():
    assert as_float_matrix([0, 100], ["celsius"]).tolist() == [[0.0], [100.0]]
    assert as_float_matrix(np.array([[1.5], [2.0]]), ["celsius"]).dtype == np.float64
    assert as_float_matrix(pd.DataFrame({"b": [2.0], "a": [1.0]}), ["a", "b"]).tolist() == [[1.0, 2.0]]
    with pytest.raises(ValueError, match=r"expected \(n, 2\) numbers for columns \['a', 'b'\], got shape \(2, 3\)"):
        as_float_matrix(np.zeros((2, 3)), ["a", "b"])
    with pytest.raises(ValueError, match=r"expected numbers for \['celsius'\]"):
        as_float_matrix(["warm"], ["celsius"])


def test_images_of_the_right_size_pass_unchanged_and_others_are_resized_to_it():
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert np.array_equal(as_image_batch(batch, 32), batch)
    assert np.array_equal(as_image_batch(batch[0], 32), batch[:1])  # one image is a batch of one
    assert as_image_batch(rng.integers(0, 256, (2, 50, 70, 3)), (20, 30)).shape == (2, 20, 30, 3)
    flat = np.full((40, 40, 3), 77, np.uint8)  # bilinear resizing keeps a flat image flat
    assert (as_image_batch(flat, 16) == 77).all()


def test_images_of_different_sizes_may_come_as_a_list_and_keep_their_own_sizes():
    images = as_images([np.zeros((10, 12, 3)), np.zeros((30, 20, 3))])
    assert [x.shape for x in images] == [(10, 12, 3), (30, 20, 3)]
    assert as_image_batch(images, 8).shape == (2, 8, 8, 3)


def test_grey_and_colour_images_are_converted_to_the_channels_the_net_takes():
    grey = np.full((2, 9, 9), 100, np.uint8)
    assert as_image_batch(grey, 9, channels=None).shape == (2, 9, 9)
    assert as_image_batch(grey[..., None], 9, channels=None).shape == (2, 9, 9)
    rgb = as_image_batch(grey[0][None, ..., None].repeat(3, -1), 9, channels=3)
    assert rgb.shape == (1, 9, 9, 3)
    assert (as_image_batch(rgb, 9, channels=None) == 100).all()  # grey as PIL computes luminance
    rgba = np.concatenate([rgb, np.full((1, 9, 9, 1), 255, np.uint8)], axis=-1)
    assert np.array_equal(as_image_batch(rgba, 9, channels=3), rgb)


@pytest.mark.parametrize(
    "bad, shown",
    [
        (np.zeros(5), r"got shape \(5,\)"),
        (np.zeros((1, 2, 3, 4, 5)), r"got shape \(1, 2, 3, 4, 5\)"),
        (["not", "pixels"], "got list that is not numbers"),
    ],
)
def test_what_is_not_an_image_batch_is_refused_saying_what_is_expected(bad, shown):
    with pytest.raises(ValueError, match=r"expected uint8 images \(N, H, W, 3\) or one image, " + shown):
        as_image_batch(bad, 8)
