"""word-debias: GloVe text files (loader, sample, validation naming the bad line), the NumPy geometry
(cosine, analogies, bias direction, neutralize, equalize), and one end-to-end pipeline run on real Prefect,
MLflow and GX that removes the gender component of occupations while keeping analogies."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from components.data import word_lists
from components.data.formats import glove_text
from components.data.formats.images import MissingDataError
from components.projects import get_project
from components.scratch.debias import analogy_answers, bias_direction, cosine_similarity, equalize, neutralize, unit
from components.validation.expectations import DataValidationError
from tests.test_numpy_cnn_rnn_projects import run_pipeline, served_score

FILE = "glove.6B.50d.txt"


@pytest.fixture(scope="module")
def glove(sample_data):
    return glove_text.read_glove(sample_data("word-debias") / FILE)


# --- the GloVe text format ---------------------------------------------------------------------------------


@pytest.mark.unit
def test_sample_is_a_glove_text_file_of_real_vectors_and_deterministic(sample_data, tmp_path, glove):
    path = sample_data("word-debias") / FILE
    first = path.read_text().split("\n", 1)[0].split(" ")
    assert first[0] == "the" and len(first) == 51 and first[1:4] == ["0.418", "0.24968", "-0.41242"]
    assert 10000 <= len(glove) < 11000 and glove.dim == 50 and path.stat().st_size < 6e6
    assert set(word_lists.all_words()) <= set(glove.words)  # the lists' rarer words are added to the top 10k
    real = glove_text.packaged_glove()
    np.testing.assert_allclose(glove["nurse"], real["nurse"], rtol=1e-4, atol=1e-6)  # 5 significant digits
    get_project("word-debias").make_sample(tmp_path)
    assert (tmp_path / FILE).read_bytes() == path.read_bytes()


@pytest.mark.unit
def test_king_minus_man_plus_woman_is_queen(glove):
    u = glove.normalized()
    q = np.array([[u.index["man"], u.index["king"], u.index["woman"]]])
    assert u.words[analogy_answers(u.vectors, q)[0]] == "queen"


@pytest.mark.unit
def test_a_broken_glove_file_fails_validation_naming_the_lines(tmp_path):
    rng = np.random.default_rng(0)
    lines = [glove_text.format_line(f"w{i}", rng.normal(size=4)) for i in range(8)]
    lines[2] = "w2 0.1 0.2 0.3\n"  # a value short
    lines[4] = "w4 0.1 abc 0.3 0.4\n"  # not a number
    lines[6] = glove_text.format_line("w1", rng.normal(size=4))  # a second vector for w1
    path = tmp_path / "vectors.txt"
    path.write_text("".join(lines))
    with pytest.raises(DataValidationError) as err:
        glove_text.validate_glove(path, dimension=4, required_words=["w0", "nurse"])
    message = str(err.value)
    assert "line 3 ('w2', 3 values)" in message and "every line has a word and 4 values" in message
    assert "line 5 ('w4', 4 values)" in message and "finite number" in message
    assert "line 2 ('w1'" in message and "line 7 ('w1'" in message  # duplicate word
    missing = [o for o in err.value.report.failures if o.column == "in_vocabulary"]
    assert [o.failing for o in missing] == [["nurse"]]  # w0 is there; the word the project needs is not


@pytest.mark.unit
def test_glove_loader_errors_say_what_and_where(tmp_path):
    with pytest.raises(MissingDataError, match="dlfolio data"):
        glove_text.read_glove(tmp_path / "missing.txt")
    (tmp_path / "v.txt").write_text("a 1 2 3\nb 1 2 3\nc 1 2\n")
    with pytest.raises(ValueError, match=r"line 3 \('c'\) has 2 values, expected 3"):
        glove_text.read_glove(tmp_path / "v.txt")
    (tmp_path / "ok.txt").write_text("a 1 2 3\nb -1 0.5 2e-3\n")
    loaded = glove_text.read_glove(tmp_path / "ok.txt")
    assert loaded.words == ["a", "b"] and loaded.vectors.dtype == np.float32
    np.testing.assert_allclose(loaded["b"], [-1, 0.5, 0.002])


# --- the geometry ------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_cosine_similarity_is_the_angle_between_vectors():
    assert cosine_similarity(np.array([1.0, 0]), np.array([3.0, 0])) == pytest.approx(1)
    assert cosine_similarity(np.array([1.0, 0]), np.array([0, 2.0])) == pytest.approx(0)
    assert cosine_similarity(np.array([1.0, 1]), np.array([-1.0, -1])) == pytest.approx(-1)
    assert cosine_similarity(np.array([1.0, 0]), np.array([1.0, 1])) == pytest.approx(np.sqrt(0.5))


@pytest.mark.unit
def test_analogy_excludes_the_question_words_and_takes_the_nearest_other():
    v = unit(np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1], [0, 1, 0.9]], dtype=float))
    # b - a + c = (0,1,1): word 3 exactly; excluding it (as a question word) the answer is its neighbour 4.
    assert analogy_answers(v, np.array([[0, 1, 2]]))[0] == 3
    assert analogy_answers(v, np.array([[0, 1, 3]]))[0] == 4


@pytest.mark.unit
def test_bias_direction_points_from_the_first_words_to_the_second(glove):
    u = glove.normalized()
    pairs = np.array([[u.index[m], u.index[f]] for m, f in word_lists.DEFINITIONAL_PAIRS])
    g, explained = bias_direction(u.vectors, pairs, "pca")
    assert np.linalg.norm(g) == pytest.approx(1, abs=1e-6) and 0.2 < explained <= 1
    assert u["woman"] @ g > u["man"] @ g and u["receptionist"] @ g > u["engineer"] @ g
    difference, _ = bias_direction(u.vectors, pairs, "difference")
    np.testing.assert_allclose(difference, unit(u["woman"] - u["man"]), atol=1e-6)
    assert cosine_similarity(g, difference) > 0.7  # the PCA direction and woman - man agree


@pytest.mark.unit
def test_neutralize_removes_the_component_along_g_and_keeps_unit_length():
    rng = np.random.default_rng(1)
    g, e = unit(rng.normal(size=50)), unit(rng.normal(size=(5, 50)))
    out = neutralize(e, g)
    np.testing.assert_allclose(out @ g, 0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1)
    assert abs(neutralize(e[0], g) @ g) < 1e-12  # one vector too


@pytest.mark.unit
def test_equalize_makes_a_pair_symmetric_and_equidistant_from_neutral_words():
    rng = np.random.default_rng(2)
    g = unit(rng.normal(size=50))
    e1, e2 = unit(rng.normal(size=50) + 4 * g), unit(rng.normal(size=50) + 1 * g)  # both lean towards +g
    n1, n2 = equalize(e1, e2, g)
    assert n1 @ g == pytest.approx(-(n2 @ g)) and n1 @ g > 0  # mirrored, and e1 stays on its side
    assert np.linalg.norm(n1) == pytest.approx(1) and np.linalg.norm(n2) == pytest.approx(1)
    neutral = neutralize(unit(rng.normal(size=50)), g)
    assert neutral @ n1 == pytest.approx(neutral @ n2)  # no neutral word is closer to one of the two
    np.testing.assert_allclose(n1 - (n1 @ g) * g, n2 - (n2 @ g) * g, atol=1e-12)  # they differ only along g


# --- end to end --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def debias_run(prefect_server, tmp_path_factory, sample_data):
    root = tmp_path_factory.mktemp("word-debias-root")
    return root, run_pipeline(root, "word-debias", sample_data("word-debias"), {})


@pytest.mark.e2e
def test_debias_zeroes_occupations_on_g_and_keeps_the_geometry(debias_run):
    _, r = debias_run
    assert r["neutral_projection_before"] > 0.1 and r["neutral_projection"] < 1e-6
    assert r["equalize_asymmetry_before"] > 0.05 and r["equalize_asymmetry"] < 1e-6
    # 3202 questions, ~10k candidate words: chance is 1e-4; GloVe 50d answers ~64% of them
    assert r["analogy_accuracy_original"] > 0.5 and r["analogy_accuracy"] > r["analogy_accuracy_original"] - 0.03
    assert r["occupation_similarity_kept"] > 0.9  # occupations keep their similarities to each other


@pytest.mark.integration
def test_debias_run_logs_the_projection_figure_and_tables(debias_run):
    root, r = debias_run
    client = MlflowClient()
    plots = {a.path for a in client.list_artifacts(r["run_id"], "plots")}
    assert "plots/bias_projections.png" in plots
    table = pd.read_csv(root / "outputs" / "word-debias" / "plots" / "occupation_projections.csv")
    assert len(table) == len(word_lists.OCCUPATIONS)
    assert table.set_index("word").loc["homemaker", "before"] > 0.2 > table["after"].abs().max()


@pytest.mark.integration
def test_debiased_embeddings_are_registered_and_serve_words(debias_run):
    root, r = debias_run
    assert MlflowClient().get_model_version_by_alias("word-debias", "challenger").version == r["model_version"]
    model = mlflow.pyfunc.load_model("models:/word-debias@challenger")
    out = model.predict(pd.DataFrame({"word": ["Nurse", "actor", "actress", "qwzxv"]}))
    assert list(out.columns[:3]) == ["word", "in_vocabulary", "projection"] and out.shape[1] == 53
    assert abs(out["projection"][0]) < 1e-6
    assert out["projection"][1] == pytest.approx(-out["projection"][2], abs=1e-6) and out["projection"][2] > 0.1
    assert not out["in_vocabulary"][3] and np.isnan(out["v0"][3])
    vectors = out[[f"v{i}" for i in range(50)]].to_numpy()[:3]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    scored = served_score(root, "word-debias", model)
    assert scored["analogy_accuracy"] == pytest.approx(r["analogy_accuracy"])
    assert scored["neutral_projection"] < 1e-6
