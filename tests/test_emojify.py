"""emojify: the sentence,label CSV (reader, sample, validation naming the bad line), the two GloVe classifiers,
and one shrunk end-to-end run on real Prefect, MLflow and GX where both learn far above chance, each arm is a
child run, and the served LSTM answers sentences."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from components.data.formats import emoji_csv, glove_text
from components.data.formats.images import MissingDataError
from components.models.emojify import AveragedEmbeddingClassifier, EmojifyLSTM
from components.projects import get_project
from components.projects.emojify import encode
from components.validation.expectations import DataValidationError
from tests.test_numpy_cnn_rnn_projects import run_pipeline, served_score

CLASSES = ("heart", "baseball", "smile", "disappointed", "fork_and_knife")
SMALL = {  # a smaller LSTM for fewer epochs; the averaged baseline keeps its settings
    "model": {"hidden": 32},
    "train": {"epochs": 8, "lr": 0.01},
}


# --- the CSV format and the sample ---------------------------------------------------------------------------


@pytest.mark.unit
def test_sample_is_a_sentence_label_csv_with_five_balanced_emoji_and_deterministic(sample_data, tmp_path):
    root = sample_data("emojify")
    text = (root / "emoji.csv").read_text()
    assert text.startswith("sentence,label\n")
    table = emoji_csv.read_emoji_csv(root / "emoji.csv")
    assert len(table) == 1200 and table["label"].value_counts().to_dict() == {str(i): 240 for i in range(5)}
    assert table["sentence"].is_unique and table["line"].iloc[0] == 2
    assert any(s.startswith("i am not") for s in table["sentence"])  # negations are part of the task
    glove = glove_text.read_glove(root / "glove.6B.50d.txt")
    assert glove.dim == 50 and set(emoji_csv.sample_words()) <= set(glove.words)
    get_project("emojify").make_sample(tmp_path)
    for name in ("emoji.csv", "glove.6B.50d.txt"):
        assert (tmp_path / name).read_bytes() == (root / name).read_bytes()


@pytest.mark.unit
def test_the_course_layout_without_header_reads_the_same(tmp_path):
    (tmp_path / "train_emoji.csv").write_text(
        'never talk to me again,3\nI am proud of your achievements,2,,\n"food, please",4\n'
    )
    table = emoji_csv.read_emoji_csv(tmp_path / "train_emoji.csv")
    assert table["line"].tolist() == [1, 2, 3] and table["label"].tolist() == ["3", "2", "4"]
    assert table["sentence"].tolist() == ["never talk to me again", "I am proud of your achievements", "food, please"]


@pytest.mark.unit
def test_tokenize_splits_like_glove():
    assert emoji_csv.tokenize("I didn't like it, John's pizza!") == [
        "i",
        "did",
        "n't",
        "like",
        "it",
        "john",
        "'s",
        "pizza",
    ]


@pytest.mark.unit
def test_a_broken_csv_fails_validation_naming_the_lines(tmp_path, sample_data):
    vocabulary = set(glove_text.read_glove(sample_data("emojify") / "glove.6B.50d.txt").words)
    path = tmp_path / "emoji.csv"
    rows = ["sentence,label", "i love you,0", "   ,2", "lets play,7", "qwzx vbnm,1", "i want pizza,x"]
    path.write_text("\n".join(rows + ["i am happy,2"] * 3) + "\n")
    with pytest.raises(DataValidationError) as err:
        emoji_csv.validate_emoji_csv(path, CLASSES, vocabulary, min_rows=5, min_per_class=2)
    message = str(err.value)
    assert "line 3: '   '" in message and "a sentence is not empty" in message
    assert "line 4: 'lets play' (label '7')" in message and "line 6: 'i want pizza' (label 'x')" in message
    assert "line 5: 'qwzx vbnm'" in message and "word vector" in message
    assert "each emoji has at least 2 sentences" in message and "fork_and_knife" in message


@pytest.mark.unit
def test_a_row_with_extra_columns_or_a_missing_file_says_where(tmp_path):
    (tmp_path / "emoji.csv").write_text("sentence,label\ni love you,0\ni,love,you,0\n")
    with pytest.raises(DataValidationError, match=r"line 3: 'i,love,you,0'"):
        emoji_csv.read_emoji_csv(tmp_path / "emoji.csv")
    with pytest.raises(MissingDataError, match="dlfolio data emojify"):
        emoji_csv.read_emoji_csv(tmp_path / "missing.csv")


# --- the models ----------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_encode_skips_unknown_words_and_pads_with_zero():
    index = {"i": 1, "love": 2, "you": 3}
    tokens = encode(["I love qwzx you", "you you you you you you"], index, max_words=4)
    assert tokens.tolist() == [[1, 2, 3, 0], [3, 3, 3, 3]]


@pytest.mark.unit
def test_the_average_model_is_softmax_of_the_mean_word_vector():
    vectors = torch.cat([torch.zeros(1, 4), torch.randn(5, 4)])
    model = AveragedEmbeddingClassifier(vectors, classes=3)
    tokens = torch.tensor([[1, 2, 0, 0], [3, 0, 0, 0]])
    expected = model.out(torch.stack([vectors[[1, 2]].mean(0), vectors[3]]))
    torch.testing.assert_close(model(tokens), expected)
    assert not model.embedding.weight.requires_grad  # GloVe stays frozen


@pytest.mark.unit
def test_the_lstm_reads_each_sentence_to_its_own_end_and_ignores_padding():
    torch.manual_seed(0)
    vectors = torch.cat([torch.zeros(1, 6), torch.randn(8, 6)])
    model = EmojifyLSTM(vectors, classes=5, hidden=16, layers=2, dropout=0.5).eval()
    short, padded = torch.tensor([[4, 2, 7]]), torch.tensor([[4, 2, 7, 0, 0, 0]])
    assert model(padded).shape == (1, 5)
    torch.testing.assert_close(model(short), model(padded))
    mixed = torch.tensor([[4, 2, 7, 0], [3, 0, 0, 0]])  # each row ends at its own last word
    torch.testing.assert_close(model(mixed), torch.cat([model(short), model(torch.tensor([[3]]))]))
    assert not torch.allclose(model(torch.tensor([[7, 2, 4]])), model(short))  # word order matters, unlike the average
    assert not model.embedding.weight.requires_grad


# --- end to end ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emojify_run(prefect_server, tmp_path_factory, sample_data):
    root = tmp_path_factory.mktemp("emojify-root")
    return root, run_pipeline(root, "emojify", sample_data("emojify"), SMALL)


@pytest.mark.e2e
def test_both_models_learn_far_above_chance_and_the_served_lstm_reads_negations(emojify_run):
    _, r = emojify_run
    assert r["chance"] == pytest.approx(0.2)
    # 8 epochs of a 32-unit LSTM reach ~0.93 here (the default 128 units, 15 epochs ~0.98); averaging ~0.95
    assert r["accuracy_average"] >= 0.85 and r["accuracy_lstm"] >= 0.85 and r["accuracy"] == r["accuracy_lstm"]
    # "i am not happy" is disappointed although its words lean to smile; "i am not sad anymore" is smile
    assert r["negation_sentences"] >= 10 and r["negation_accuracy_lstm"] >= 0.7


@pytest.mark.integration
def test_each_arm_is_a_child_run_and_the_confusion_matrix_is_logged(emojify_run):
    root, r = emojify_run
    client = MlflowClient()
    run = client.get_run(r["run_id"])
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    arms = [
        c for c in children if not c.info.run_name.startswith("conformal-")
    ]  # the conformal stage's: one per method
    assert sorted(c.info.run_name for c in arms) == ["model=average", "model=lstm"]
    lstm = next(c for c in children if c.info.run_name == "model=lstm")
    assert lstm.data.metrics["test_accuracy"] == pytest.approx(r["accuracy"])
    assert len(client.get_metric_history(lstm.info.run_id, "val_loss")) == len(
        client.get_metric_history(run.info.run_id, "val_loss")
    )
    plots = {a.path for a in client.list_artifacts(r["run_id"], "plots")}
    assert {"plots/confusion_matrix.png", "plots/training_curves.png"} <= plots
    predictions = pd.read_csv(root / "outputs" / "emojify" / "plots" / "test_predictions.csv")
    assert len(predictions) == 240 and {"predicted_average", "predicted_lstm"} <= set(predictions.columns)


@pytest.mark.integration
def test_the_lstm_is_registered_and_serves_sentences(emojify_run):
    root, r = emojify_run
    assert MlflowClient().get_model_version_by_alias("emojify", "challenger").version == r["model_version"]
    model = mlflow.pyfunc.load_model("models:/emojify@challenger")
    out = model.predict(
        pd.DataFrame({"sentence": ["I love you so much", "we played baseball on sunday", "i want sushi for dinner"]})
    )
    assert out["name"].tolist() == ["heart", "baseball", "fork_and_knife"]
    assert out["label"].tolist() == [0, 1, 4] and out["emoji"][1] == "\u26be"
    np.testing.assert_allclose(out[[f"p_{c}" for c in CLASSES]].sum(axis=1), 1, atol=1e-5)
    assert served_score(root, "emojify", model)["accuracy"] == pytest.approx(r["accuracy"])
