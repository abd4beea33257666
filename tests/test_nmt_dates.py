"""nmt-dates: human-readable dates -> ISO dates with a BiLSTM encoder and an attentive LSTM decoder.

The sample is a deterministic CSV of ``human,machine`` pairs (the real format; a .tsv reads the same); a bad
file fails validation naming the missing column or the lines; the attention is a distribution over the real
input characters; and a shrunk pipeline on real Prefect, MLflow and GX translates far better than any
input-blind guess, registers a model that serves ``human -> machine``, and that model re-scores to the
pipeline's exact match.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from components.data.formats.date_pairs import (
    FORMATS,
    PairRules,
    generate_pairs,
    human_date,
    read_pairs,
    validate_pairs,
    write_pairs,
)
from components.data.formats.images import MissingDataError
from components.models.date_attention import PAD, AdditiveAttention, DateTranslator
from components.projects import get_project
from components.projects.nmt_dates import CharCodec, translation_metrics
from components.projects.settings.nmt_dates import NmtDatesSettings
from components.validation.expectations import DataValidationError

ALPHABET = NmtDatesSettings.model_fields["data"].default.alphabet
SMALL = {"train": {"epochs": 4}}  # val exact match ~0.99 after 4 epochs; the default 10 reach 1.0 on test


# --- the sample: real format, deterministic, many ways of writing a date ----------------------------------


@pytest.mark.unit
def test_sample_is_a_deterministic_csv_of_human_and_iso_dates(sample_data, tmp_path):
    path = sample_data("nmt-dates") / "dates.csv"
    assert path.read_text().splitlines()[0] == "human,machine"
    pairs = read_pairs(path)
    assert len(pairs) == 10_000 and list(pairs.columns) == ["line", "human", "machine"]
    assert all(dt.date.fromisoformat(m).isoformat() == m for m in pairs["machine"])
    assert pairs["human"].str.lower().is_unique
    humans = " ".join(pairs["human"])
    assert all(s in humans for s in ("/", ".", ",", "tuesday", "July", "feb"))  # slashes, dots, words, cases
    get_project("nmt-dates").make_sample(tmp_path)
    assert hashlib.md5((tmp_path / "dates.csv").read_bytes()).hexdigest() == hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.unit
@pytest.mark.parametrize(
    "template, human",
    [
        ("{d} {Month} {yyyy}", "3 May 1979"),
        ("{weekday} {d} {month} {yyyy}", "thursday 3 may 1979"),
        ("{m}/{d}/{yy}", "5/3/79"),
        ("{Month} {d}, {yyyy}", "May 3, 1979"),
        ("{dd}.{mm}.{yy}", "03.05.79"),
    ],
)
def test_human_formats_write_the_date_as_people_do(template, human):
    assert template in FORMATS
    assert human_date(dt.date(1979, 5, 3), template) == human


@pytest.mark.unit
def test_two_digit_years_are_unambiguous_in_the_sample():
    pairs = generate_pairs(2000, seed=1)
    short = pairs[pairs["human"].str.fullmatch(r"\d+/\d+/\d\d")]
    assert len(short) > 20
    years = short["human"].str[-2:].astype(int)
    assert ((years >= 50) == short["machine"].str.startswith("19")).all()


@pytest.mark.unit
def test_a_tsv_file_reads_like_the_csv(tmp_path):
    pairs = generate_pairs(150, seed=2)
    write_pairs(pairs, tmp_path / "dates.tsv")
    assert "\t" in (tmp_path / "dates.tsv").read_text().splitlines()[1]
    _, table = validate_pairs(tmp_path / "dates.tsv", PairRules(ALPHABET))
    assert table["machine"].tolist() == pairs["machine"].tolist()
    assert table["human"].tolist() == pairs["human"].str.lower().tolist()


# --- validation names what is wrong, and where ------------------------------------------------------------


@pytest.mark.unit
def test_bad_pairs_fail_validation_naming_their_lines(tmp_path):
    good = generate_pairs(120, seed=3)
    bad = pd.DataFrame(
        {
            "human": ["", "3 mai 1979 ü", "31 feb 2001", "a" * 31, good["human"][0].upper(), "x"],
            "machine": ["2001-01-01", "1979-05-03", "2001-02-31", "2001-01-02", good["machine"][0], "2001-1-3"],
        }
    )
    path = tmp_path / "dates.csv"
    write_pairs(pd.concat([good, bad], ignore_index=True), path)
    with pytest.raises(DataValidationError) as err:
        validate_pairs(path, PairRules(ALPHABET, max_input_length=30, min_pairs=100))
    message = str(err.value)
    first = 122  # header on line 1, 120 good pairs on lines 2-121
    assert f"line {first}: '' -> '2001-01-01'" in message  # empty input
    assert f"line {first + 1}: '3 mai 1979 ü'" in message  # ü is not in the alphabet
    assert f"line {first + 2}: '31 feb 2001' -> '2001-02-31'" in message  # not a calendar date
    assert f"line {first + 3}: '{'a' * 31}'" in message  # longer than Tx
    assert f"line 2: {good['human'][0].lower()!r}" in message and f"line {first + 4}:" in message  # duplicate
    assert f"line {first + 5}: 'x' -> '2001-1-3'" in message  # not YYYY-MM-DD
    assert "real calendar date" in message and "ISO date" in message


@pytest.mark.unit
def test_missing_columns_and_files_say_what_is_missing(tmp_path):
    path = tmp_path / "dates.csv"
    path.write_text("text,iso\n3 may 1979,1979-05-03\n")
    with pytest.raises(DataValidationError, match=r"expect_column_to_exist\(human\).*the file has \['text', 'iso'\]"):
        validate_pairs(path, PairRules(ALPHABET, min_pairs=1))
    with pytest.raises(MissingDataError, match="dlfolio data nmt-dates"):
        read_pairs(tmp_path / "nothing.csv")


# --- the model parts --------------------------------------------------------------------------------------


@pytest.mark.unit
def test_codec_pads_marks_unknown_characters_and_cuts_to_tx():
    codec = CharCodec("abc ", length=5)
    ids = codec.encode(["Ab", "c?a", "abcabcabc"])
    assert ids.tolist() == [[2, 3, PAD, PAD, PAD], [4, 1, 2, PAD, PAD], [2, 3, 4, 2, 3]]


@pytest.mark.unit
def test_attention_is_a_distribution_over_the_real_input_characters():
    torch.manual_seed(0)
    model = DateTranslator(input_vocab=12, output_vocab=11, output_length=10)
    x = torch.randint(2, 12, (3, 8))
    x[0, 5:] = PAD
    x[1, 1:] = PAD
    logits, alpha = model.translate(x)
    assert logits.shape == (3, 10, 11) and alpha.shape == (3, 10, 8)
    assert model(x).shape == (3, 11, 10)  # the layout cross_entropy takes for (B, Ty) targets
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3, 10))
    assert (alpha >= 0).all()
    assert (alpha[0, :, 5:] == 0).all() and (alpha[1, :, 1:] == 0).all()
    torch.testing.assert_close(alpha[1, :, 0], torch.ones(10))  # one character: all weight on it
    empty_logits, empty_alpha = model.translate(torch.full((1, 8), PAD))  # an empty input still translates
    assert torch.isfinite(empty_logits).all() and (empty_alpha[0, :, 0] == 1).all()


@pytest.mark.unit
def test_translation_does_not_depend_on_how_much_padding_follows():
    torch.manual_seed(0)
    model = DateTranslator(input_vocab=12, output_vocab=11).eval()
    x = torch.randint(2, 12, (4, 9))
    x[:, 6:] = PAD
    padded = torch.cat([x, torch.full((4, 11), PAD)], dim=1)
    (a, wa), (b, wb) = model.translate(x), model.translate(padded)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(wa, wb[:, :, :9])


@pytest.mark.unit
def test_each_row_of_a_batch_translates_as_it_would_alone_whatever_the_other_rows_lengths():
    # the right-to-left encoder must start at each row's own last character, not at the batch's padding
    torch.manual_seed(0)
    model = DateTranslator(input_vocab=12, output_vocab=11).eval()
    rows = [torch.randint(2, 12, (n,)) for n in (9, 4, 1, 6)]
    batch = torch.stack([torch.cat([r, torch.full((9 - len(r),), PAD)]) for r in rows])
    logits, alpha = model.translate(batch)
    for i, row in enumerate(rows):
        alone_logits, alone_alpha = model.translate(row[None])
        torch.testing.assert_close(logits[i], alone_logits[0])
        torch.testing.assert_close(alpha[i, :, : len(row)], alone_alpha[0])


@pytest.mark.unit
def test_attention_gradients_match_finite_differences():
    torch.manual_seed(0)
    attention = AdditiveAttention(state=3, keys=4, hidden=5).double()
    s = torch.randn(2, 3, dtype=torch.double, requires_grad=True)
    a = torch.randn(2, 6, 4, dtype=torch.double, requires_grad=True)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    assert torch.autograd.gradcheck(lambda s, a: attention(s, a, mask), (s, a))


@pytest.mark.unit
def test_translation_metrics_count_whole_dates_and_characters():
    m = translation_metrics(["1979-05-03", "1979-05-04", "1979-13-01"], ["1979-05-03", "1979-05-03", "1979-12-01"])
    assert m["exact_match"] == pytest.approx(1 / 3)
    assert m["char_accuracy"] == pytest.approx(28 / 30)
    assert m["valid_date_fraction"] == pytest.approx(2 / 3)


# --- end to end: a shrunk pipeline on real Prefect, MLflow and GX -----------------------------------------


def served_score(root, model) -> dict:
    from flows.promotion import load_settings

    spec, settings = load_settings("nmt-dates", "params.yaml", root)
    return spec.score(model, spec.prepare(settings), settings)


@pytest.fixture(scope="module")
def nmt_run(prefect_server, tmp_path_factory, sample_data):
    from flows.pipeline import project_pipeline
    from tests.conftest import REPO, deep_merge

    root = tmp_path_factory.mktemp("nmt-dates-root")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = deep_merge(params["projects"]["nmt-dates"], SMALL) | {"data_dir": str(sample_data("nmt-dates"))}
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params["defaults"], "projects": {"nmt-dates": section}})
    )
    return root, project_pipeline(project="nmt-dates", root=str(root))


@pytest.mark.e2e
def test_translates_dates_far_better_than_any_input_blind_guess(nmt_run):
    _, result = nmt_run
    assert result["exact_match"] >= 0.9, result  # the most common training date gets ~0 of the test dates
    assert result["exact_match"] > result["baseline_exact_match"] + 0.8
    assert result["char_accuracy"] >= 0.98 and result["baseline_char_accuracy"] < 0.6  # per position: "19"/"20", "-"
    assert result["valid_date_fraction"] >= 0.95


@pytest.mark.integration
def test_run_logs_curves_and_attention_maps(nmt_run):
    root, result = nmt_run
    client = MlflowClient()
    run_id = result["run_id"]
    assert len(client.get_metric_history(run_id, "val_exact_match")) == 4
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {"plots/training_curves.png", "plots/attention_maps.png"} <= plots
    predictions = pd.read_csv(root / "outputs" / "nmt-dates" / "plots" / "test_predictions.csv", dtype={"machine": str})
    assert len(predictions) == 1000 and predictions["correct"].mean() == pytest.approx(result["exact_match"])


@pytest.mark.integration
def test_registered_model_serves_iso_dates_and_rescores_to_the_pipeline_metric(nmt_run):
    root, result = nmt_run
    assert MlflowClient().get_model_version_by_alias("nmt-dates", "challenger").version == result["model_version"]
    model = mlflow.pyfunc.load_model("models:/nmt-dates@challenger")
    frame = pd.DataFrame({"human": ["3 May 1979", "tuesday 10 july 2007", "5/30/68", "March 3, 2001"]})
    out = model.predict(frame)
    assert list(out.columns) == ["human", "machine", "score"]
    right = out["machine"] == pd.Series(["1979-05-03", "2007-07-10", "1968-05-30", "2001-03-03"])
    assert right.sum() >= 3, out
    assert ((out["score"] > 0) & (out["score"] <= 1)).all() and np.median(out["score"]) > 0.5
    assert served_score(root, model)["exact_match"] == pytest.approx(result["exact_match"])


@pytest.mark.integration
def test_mlflow_models_serve_translates_a_text_column_posted_as_json(nmt_run, mlflow_serve):
    _, result = nmt_run
    post = mlflow_serve(f"models:/nmt-dates/{result['model_version']}")
    status, body = post({"dataframe_split": {"columns": ["human"], "data": [["3 May 1979"], ["tuesday 10 july 2007"]]}})
    assert status == 200, body
    assert [row["machine"] for row in body["predictions"]] == ["1979-05-03", "2007-07-10"]
    status, body = post({"dataframe_split": {"columns": ["date"], "data": [["3 May 1979"]]}})  # the wrong column
    assert status == 400 and "human" in body["message"]
