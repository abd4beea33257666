"""Bad inputs a demanding user brings (issue 19, items 10 and 12): each gets a validation report or one clear
error naming the file (and the line, where there is one), never a raw traceback from pandas, zipfile or PyYAML."""

from __future__ import annotations

import pytest

from components.validation.expectations import DataValidationError

pytestmark = pytest.mark.unit

DATES_HEADER = b"human,machine\n"


def _pairs_rules():
    from components.data.formats.date_pairs import PairRules

    return PairRules("abcdefghijklmnopqrstuvwxyz0123456789 ,./-")


def _failure_line(exc: pytest.ExceptionInfo) -> str:
    (failure,) = exc.value.report.failures
    return failure.line()


# --- a) CSV, zip and h5 files ----------------------------------------------------------------------------------


def test_nmt_dates_non_utf8_csv_names_the_line(tmp_path):
    from components.data.formats.date_pairs import validate_pairs

    path = tmp_path / "dates.csv"
    path.write_bytes(DATES_HEADER + b"10 july 2007,2007-07-10\n11 juillet 2007 \xe9t\xe9,2007-07-11\n")
    with pytest.raises(DataValidationError) as exc:
        validate_pairs(path, _pairs_rules())
    assert str(path) in str(exc.value)
    assert "not UTF-8" in _failure_line(exc) and "line 3" in _failure_line(exc)


def test_nmt_dates_ragged_csv_names_the_line(tmp_path):
    from components.data.formats.date_pairs import validate_pairs

    path = tmp_path / "dates.csv"
    path.write_bytes(DATES_HEADER + b"10 july 2007,2007-07-10\n11 july 2007,2007-07-11,oops\n")
    with pytest.raises(DataValidationError) as exc:
        validate_pairs(path, _pairs_rules())
    assert "line 3 has 3 fields; the header has 2" in _failure_line(exc)


def test_nmt_dates_empty_csv_is_reported(tmp_path):
    from components.data.formats.date_pairs import validate_pairs

    path = tmp_path / "dates.csv"
    path.write_bytes(b"")
    with pytest.raises(DataValidationError) as exc:
        validate_pairs(path, _pairs_rules())
    assert str(path) in str(exc.value) and "empty" in _failure_line(exc)


def test_facial_keypoints_corrupt_zip_is_reported(tmp_path):
    from components.data.formats.facial_keypoints import KeypointRules, validate_keypoints_file

    path = tmp_path / "training.zip"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(DataValidationError) as exc:
        validate_keypoints_file(path, KeypointRules())
    assert str(path) in str(exc.value) and "not a zip file" in _failure_line(exc)


def test_facial_keypoints_non_utf8_csv_names_the_line(tmp_path, sample_data):
    from components.data.formats.facial_keypoints import KeypointRules, validate_keypoints_file

    path = tmp_path / "training.csv"
    import zipfile

    with zipfile.ZipFile(sample_data("facial-keypoints") / "training.zip") as archive:
        lines = archive.read(archive.namelist()[0]).splitlines(keepends=True)[:4]
    lines[3] = lines[3].replace(b",", b",\xff", 1)  # a Latin-1 byte in a coordinate of line 4
    path.write_bytes(b"".join(lines))
    with pytest.raises(DataValidationError) as exc:
        validate_keypoints_file(path, KeypointRules())
    assert "not UTF-8" in _failure_line(exc) and "line 4" in _failure_line(exc)


def test_emojify_csv_with_an_excel_byte_order_mark_is_accepted(tmp_path, sample_data):
    from components.data.formats.emoji_csv import read_emoji_csv

    text = (sample_data("emojify") / "emoji.csv").read_text(encoding="utf-8")
    path = tmp_path / "emoji.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # what Excel's "CSV UTF-8 (comma delimited)" writes
    table = read_emoji_csv(path)
    assert table["line"].iloc[0] == 2  # the header was read as the header, not as a sentence labelled "label"
    assert len(table) == len(text.splitlines()) - 1


# --- b) params.yaml --------------------------------------------------------------------------------------------


def test_params_yaml_syntax_error_names_file_line_and_column(tmp_path):
    from components.settings import SettingsError, read_params

    path = tmp_path / "params.yaml"
    path.write_text("projects:\n  nmt-dates:\n    seed: 1\n   epochs: 2\n")
    with pytest.raises(SettingsError) as exc:
        read_params(path)
    message = str(exc.value)
    assert message.startswith(f"{path}:4:4: YAML syntax error") and "\n" not in message
