"""ner-resumes: named entities in resume text, BIO-tagged by a from-scratch Transformer encoder [seed 003].

Real format: JSONL resumes with character spans, the DataTurks resume-NER layout or a plain ``{"text",
"entities"}`` one (components/data/formats/resume_jsonl.py). Offline sample: GENERATED resumes whose test split
has names, companies, college cities and some skills that training never shows
(components/data/samples/resumes.py). Text is split into tokens with their character offsets; each token gets
a word id (lower-cased, digits as 0, rare words as <unk>) and a word-shape id (capitalised, upper case, digits, a
year, an e-mail, punctuation, ..., and whether it starts a line), and the encoder of ``models.transformer``'s
layers tags it B-X / I-X / O (``TokenTagger``), window by window. Tags decode back to character spans.

Measured on the test file: entity precision / recall / F1 per type and micro-averaged (exact span match), a
confusion table of gold against predicted types (boundary errors in its margins), against a dictionary
baseline: every entity string of the training split (longest match first) plus e-mail and phone regexes, and
(``compare_spacy``) spaCy's pretrained small English NER with its labels mapped onto ours (PERSON -> NAME, ORG ->
COMPANY, DATE -> DATE by default: it has no e-mail, phone, skill, degree or college type), scored on the mapped
types only, beside the tagger's and the dictionary's scores on the same types (``spacy_types_*``).
Served model: a ``text`` column -> one row per entity with its character span, label and text.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch.utils.data import TensorDataset

from components.data.formats import resume_jsonl as rj
from components.data.formats.resume_jsonl import Document, Span
from components.data.samples import resumes
from components.data.splits import random_split
from components.evaluation.plots import Panel, training_curves
from components.evaluation.report import Report
from components.metrics.entities import entity_confusion, entity_scores
from components.models.token_encoder import TokenTagger
from components.projects.base import Project, Trained, train_torch
from components.projects.settings.ner_resumes import CAPABILITIES, NerResumesSettings, ResumeDataSettings
from components.serving.inputs import as_text_list
from components.serving.predictor import Predictor
from components.training.tasks import ClassificationTask
from components.validation.expectations import DataValidationError, ValidationReport, run_suite

PAD, UNK = 0, 1  # word ids
IGNORE = -100  # the tag of padding: cross-entropy leaves it out

# --- encoding --------------------------------------------------------------------------------------------------

SHAPES = ("lower", "capitalised", "upper", "mixed", "year", "number", "alphanumeric", "email", "dotted", "punct")


def word_key(text: str) -> str:
    return re.sub(r"\d", "0", text.lower())


def word_shape(token: str, line_start: bool) -> int:
    """1 + the index of the token's shape in ``SHAPES`` (+ len(SHAPES) if it starts a line); 0 is padding."""
    if "@" in token and len(token) > 1:
        shape = "email"
    elif token.isdigit():
        shape = "year" if len(token) == 4 and token[:2] in ("19", "20") else "number"
    elif not any(c.isalnum() for c in token):
        shape = "punct"
    elif any(c.isdigit() for c in token):
        shape = "alphanumeric"
    elif any(c in ".-'" for c in token):
        shape = "dotted"
    elif token.islower():
        shape = "lower"
    elif token.isupper():
        shape = "upper"
    elif token[0].isupper() and token[1:].islower():
        shape = "capitalised"
    else:
        shape = "mixed"
    return 1 + SHAPES.index(shape) + (len(SHAPES) if line_start else 0)


def token_features(text: str, tokens: list[tuple[int, int]], vocab: dict[str, int]) -> tuple[list[int], list[int]]:
    ids, shapes, previous_end = [], [], 0
    for start, end in tokens:
        word = text[start:end]
        ids.append(vocab.get(word_key(word), UNK))
        shapes.append(word_shape(word, previous_end == 0 or "\n" in text[previous_end:start]))
        previous_end = end
    return ids, shapes


def build_vocab(documents: list[Document], min_count: int) -> dict[str, int]:
    counts = Counter(word_key(d.text[s:e]) for d in documents for s, e in rj.tokenize(d.text))
    words = sorted(w for w, c in counts.items() if c >= min_count)
    return {w: i for i, w in enumerate(words, 2)}


@dataclass
class Encoded:
    x: torch.Tensor  # (windows, 2, window) word ids and shape ids
    y: torch.Tensor  # (windows, window) tag ids, IGNORE past the end
    where: list[tuple[int, int]]  # window -> (document, first token)
    tokens: list[list[tuple[int, int]]]  # per document


def encode(texts: list[str], vocab: dict[str, int], window: int, tags: list[list[int]] | None = None) -> Encoded:
    xs, ys, where, all_tokens = [], [], [], []
    for d, text in enumerate(texts):
        tokens = rj.tokenize(text)
        all_tokens.append(tokens)
        ids, shapes = token_features(text, tokens, vocab)
        for first in range(0, max(len(tokens), 1), window):
            n = len(ids[first : first + window])
            x = torch.zeros((2, window), dtype=torch.long)
            y = torch.full((window,), IGNORE, dtype=torch.long)
            x[0, :n], x[1, :n] = torch.tensor(ids[first : first + n]), torch.tensor(shapes[first : first + n])
            if tags is not None:
                y[:n] = torch.tensor(tags[d][first : first + n])
            xs.append(x)
            ys.append(y)
            where.append((d, first))
    x = torch.stack(xs) if xs else torch.zeros((0, 2, window), dtype=torch.long)
    y = torch.stack(ys) if ys else torch.zeros((0, window), dtype=torch.long)
    return Encoded(x, y, where, all_tokens)


@torch.no_grad()
def predict_spans(model: torch.nn.Module, texts: list[str], vocab, window: int, tags: list[str]) -> list[list[Span]]:
    """The entity spans of each text: every window tagged, the tags decoded per text."""
    model.eval()
    enc = encode(texts, vocab, window)
    device = next(model.parameters()).device
    best = [model(enc.x[i : i + 64].to(device)).argmax(1).cpu() for i in range(0, len(enc.x), 64)]
    best = torch.cat(best) if best else torch.zeros((0, window), dtype=torch.long)
    per_doc = [["O"] * len(t) for t in enc.tokens]
    for row, (d, first) in zip(best.tolist(), enc.where):
        n = len(per_doc[d][first : first + window])
        per_doc[d][first : first + n] = [tags[i] for i in row[:n]]
    return [rj.bio_decode(t, p) for t, p in zip(enc.tokens, per_doc)]


CURVES = (
    Panel({"train_loss": "train", "val_loss": "validation"}, "loss", "Loss"),
    Panel({"val_token_accuracy": None}, "token accuracy", "Validation token accuracy (padding excluded)"),
)

# --- the dictionary baseline -----------------------------------------------------------------------------------

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"(?<![\w-])(?:\+\d{1,3}[ .]?)?(?:\(\d{3}\)[ .]?|\d{3}[ .-])\d{3,4}[ .-]?\d{3,4}(?![\w-])")


class DictionaryTagger:
    """Every entity string of the training split with its most frequent type, matched longest first on token
    boundaries (case-sensitive), after e-mail and phone regexes."""

    def __init__(self, documents: list[Document], max_tokens: int = 8):
        seen: dict[str, Counter] = {}
        for d in documents:
            for text, label in d.entity_texts():
                seen.setdefault(text, Counter())[label] += 1
        self.entries = {t: c.most_common(1)[0][0] for t, c in seen.items()}
        self.max_tokens = max_tokens

    def spans(self, text: str) -> list[Span]:
        found = [Span(*m.span(), "EMAIL") for m in EMAIL.finditer(text)]
        found += [Span(*m.span(), "PHONE") for m in PHONE.finditer(text)]
        taken = np.zeros(len(text) + 1, dtype=bool)
        for s in found:
            taken[s.start : s.end] = True
        tokens, i = rj.tokenize(text), 0
        while i < len(tokens):
            for j in range(min(len(tokens), i + self.max_tokens) - 1, i - 1, -1):
                start, end = tokens[i][0], tokens[j][1]
                label = self.entries.get(text[start:end])
                if label is not None and not taken[start:end].any():
                    found.append(Span(start, end, label))
                    i = j
                    break
            i += 1
        return sorted(found, key=lambda s: s.start)


# --- data ------------------------------------------------------------------------------------------------------


@dataclass
class ResumeData:
    types: list[str]
    tags: list[str]  # "O", then B-X, I-X per type
    vocab: dict[str, int]
    window: int
    documents: dict[str, list[Document]] = field(default_factory=dict)
    encoded: dict[str, Encoded] = field(default_factory=dict)

    def dataset(self, split: str) -> TensorDataset:
        return TensorDataset(self.encoded[split].x, self.encoded[split].y)


class EntityPredictor(Predictor):
    """Served model: a ``text`` column (one resume a row) -> one row per entity found: ``document`` (the input
    row), ``label``, ``start`` and ``end`` (character offsets, end exclusive) and ``text``."""

    def __init__(self, model: torch.nn.Module, vocab: dict[str, int], window: int, tags: list[str]):
        self.model, self.vocab, self.window, self.tags = model.cpu().eval(), vocab, window, tags

    def predict_frame(self, inputs) -> pd.DataFrame:
        texts = as_text_list(inputs, "text")
        spans = predict_spans(self.model, texts, self.vocab, self.window, self.tags)
        return spans_frame(texts, spans)


def spans_frame(texts: list[str], spans: list[list[Span]]) -> pd.DataFrame:
    rows = [(d, s.label, s.start, s.end, texts[d][s.start : s.end]) for d, ss in enumerate(spans) for s in ss]
    frame = pd.DataFrame(rows, columns=["document", "label", "start", "end", "text"])
    return frame.astype({"document": "int64", "start": "int64", "end": "int64"})


def spans_from_frame(frame: pd.DataFrame, documents: int) -> list[list[Span]]:
    out: list[list[Span]] = [[] for _ in range(documents)]
    for d, label, start, end in zip(frame["document"], frame["label"], frame["start"], frame["end"]):
        out[int(d)].append(Span(int(start), int(end), str(label)))
    return out


def documents_table(documents: list[Document]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line": [d.line for d in documents],
            "characters": [len(d.text) for d in documents],
            "entities": [len(d.spans) for d in documents],
        }
    )


def document_expectations(data: ResumeDataSettings) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectTableRowCountToBeBetween(
            min_value=data.min_documents, meta={"explain": f"at least {data.min_documents} resumes"}
        ),
        E.ExpectColumnValuesToBeBetween(
            column="characters",
            min_value=1,
            max_value=data.max_characters,
            meta={"explain": f"a resume's text holds 1 to {data.max_characters} characters"},
        ),
        E.ExpectColumnValuesToBeBetween(column="entities", min_value=0, meta={"explain": "entity counts are counts"}),
    ]


class NerResumes(Project):
    name = "ner-resumes"
    capabilities = CAPABILITIES
    summary = "Resume NER: a from-scratch Transformer encoder BIO-tags names, e-mails, skills, companies, dates"
    Settings = NerResumesSettings
    primary_metric = "f1"

    def make_sample(self, out_dir: Path, tiny: bool = False) -> dict:
        counts = {"train": 40, "test": 15} if tiny else ResumeDataSettings().sample_resumes
        return resumes.write_sample(out_dir, counts)

    def _files(self, settings: NerResumesSettings) -> list[Path]:
        d = settings.data
        return [settings.data_dir / f for f in (d.train_file, d.test_file) if f is not None]

    def _read(self, path: Path, settings: NerResumesSettings) -> list[Document]:
        return rj.read_jsonl(path, settings.data.labels, set(settings.data.types))

    def validate(self, settings: NerResumesSettings) -> ValidationReport:
        outcomes, rows = [], 0
        for path in self._files(settings):
            table = documents_table(self._read(path, settings))
            found = run_suite(table, document_expectations(settings.data), name="resumes", id_column="line")
            for o in found:
                o.failing = [f"line {i}" for i in o.failing]
            report = ValidationReport(str(path), found, len(table))
            if not report.success:
                raise DataValidationError(report)
            outcomes += found
            rows += len(table)
        return ValidationReport(str(settings.data_dir), outcomes, rows)

    def prepare(self, settings: NerResumesSettings) -> ResumeData:
        d, m = settings.data, settings.model
        train = self._read(settings.data_dir / d.train_file, settings)
        if d.test_file is not None:
            test = self._read(settings.data_dir / d.test_file, settings)
            split = random_split(len(train), {"val": settings.split.val}, settings.seed)
        else:
            split = random_split(len(train), {"val": settings.split.val, "test": settings.split.test}, settings.seed)
            test = [train[i] for i in split["test"]]
        documents = {"train": [train[i] for i in split["train"]], "val": [train[i] for i in split["val"]], "test": test}
        types = list(d.types)
        tags = ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]
        tag_id = {t: i for i, t in enumerate(tags)}
        data = ResumeData(types, tags, build_vocab(documents["train"], m.min_count), m.window, documents)
        for name, docs in documents.items():
            tag_ids = [[tag_id[t] for t in rj.bio_encode(rj.tokenize(doc.text), doc.spans)] for doc in docs]
            data.encoded[name] = encode([doc.text for doc in docs], data.vocab, m.window, tag_ids)
        return data

    def build(self, data: ResumeData, settings: NerResumesSettings) -> TokenTagger:
        m = settings.model
        torch.manual_seed(settings.seed)
        return TokenTagger(
            len(data.vocab) + 2,
            1 + 2 * len(SHAPES),
            len(data.tags),
            m.d_model,
            m.heads,
            m.layers,
            m.d_ff,
            m.dropout,
            max_len=max(512, m.window),
            pad_id=PAD,
            context=m.context,
            word_dropout=m.word_dropout,
            unk_id=UNK,
        )

    def train(self, data: ResumeData, settings: NerResumesSettings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        model = self.build(data, settings)
        return train_torch(
            model,
            ClassificationTask(accuracy_name="val_token_accuracy", ignore_index=IGNORE),
            data.dataset("train"),
            data.dataset("val"),
            settings,
            on_epoch=on_epoch,
            checkpoint_dir=checkpoint_dir,
            vocabulary=len(data.vocab) + 2,
            **{f"{s}_resumes": len(v) for s, v in data.documents.items()},
            **{f"{s}_windows": len(v.x) for s, v in data.encoded.items()},
        )

    def _scores(self, spans: list[list[Span]], data: ResumeData) -> dict[str, float]:
        return entity_scores([d.spans for d in data.documents["test"]], spans, data.types)

    def evaluate(self, trained: Trained, data: ResumeData, settings: NerResumesSettings) -> Report:
        docs = data.documents["test"]
        texts, gold = [d.text for d in docs], [d.spans for d in docs]
        predicted = predict_spans(trained.model, texts, data.vocab, data.window, data.tags)
        baseline = DictionaryTagger(data.documents["train"])
        baseline_spans = [baseline.spans(t) for t in texts]
        metrics = self._scores(predicted, data)
        metrics |= {f"baseline_{k}": v for k, v in self._scores(baseline_spans, data).items() if "support" not in k}
        metrics |= {"test_resumes": float(len(docs)), "test_entities": float(sum(map(len, gold)))}
        confusion = entity_confusion(gold, predicted, data.types)
        arms = ["", "baseline_"]
        tables = {}
        if settings.compare_spacy.enabled:
            arms.append("spacy_")
            spacy_metrics, tables["spacy_entity_confusion"] = self._spacy_arm(
                texts, predicted, baseline_spans, data, settings
            )
            metrics |= spacy_metrics
        per_type = pd.DataFrame(
            {
                "type": data.types,
                **{
                    f"{who}{k}": [metrics.get(f"{who}{k}_{t}", np.nan) for t in data.types]
                    for who in arms
                    for k in ("precision", "recall", "f1")
                },
                "support": [metrics[f"support_{t}"] for t in data.types],
            }
        )
        predictions = spans_frame(texts, predicted)
        gold_set = {(d, s.start, s.end, s.label) for d, ss in enumerate(gold) for s in ss}
        predictions["correct"] = [
            (d, s, e, la) in gold_set
            for d, s, e, la in zip(
                predictions["document"], predictions["start"], predictions["end"], predictions["label"]
            )
        ]
        return Report(
            metrics,
            {
                "training_curves": training_curves(trained.history, CURVES),
                "entity_confusion": confusion_figure(confusion),
                "f1_per_type": per_type_figure(per_type),
            },
            {
                "history": trained.history,
                "entity_confusion": confusion,
                "entity_scores": per_type,
                "test_predictions": predictions,
                **tables,
            },
        )

    def _spacy_arm(self, texts, predicted, baseline_spans, data: ResumeData, settings: NerResumesSettings):
        """spaCy's arm on the types its labels map onto: ``spacy_*`` metrics (micro and per type), the same micro
        scores of the transformer (``spacy_types_*``) and the dictionary (``baseline_spacy_types_*``) on those
        types only, and spaCy's confusion table over all types (an ORG on a college counts as a COMPANY)."""
        from components.pretrained import spacy_ner

        arm = settings.compare_spacy
        types = [t for t in data.types if t in set(arm.labels.values())]
        spacy_spans = spacy_ner.entity_spans(texts, arm.model, arm.labels)
        gold = [d.spans for d in data.documents["test"]]
        on_types = lambda spans: [[s for s in ss if s.label in types] for ss in spans]  # noqa: E731
        metrics = {f"spacy_{k}": v for k, v in entity_scores(on_types(gold), spacy_spans, types).items()}
        for who, spans in (("", predicted), ("baseline_", baseline_spans)):
            scores = entity_scores(on_types(gold), on_types(spans), types)
            metrics |= {f"{who}spacy_types_{k}": scores[k] for k in ("precision", "recall", "f1")}
        metrics = {k: v for k, v in metrics.items() if not k.startswith("spacy_support")}
        return metrics, entity_confusion(gold, spacy_spans, data.types)

    def score(self, model, data: ResumeData, settings: NerResumesSettings) -> dict[str, float]:
        docs = data.documents["test"]
        frame = model.predict(pd.DataFrame({"text": [d.text for d in docs]}))
        return self._scores(spans_from_frame(frame, len(docs)), data)

    def predictor(self, trained: Trained, data: ResumeData, settings: NerResumesSettings):
        example = pd.DataFrame(
            {
                "text": [
                    "Jane Doe\njane.doe@gmail.com | (555) 123-4567\n\nEXPERIENCE\nData Analyst, Acme Analytics\n"
                    "Jan 2019 - Present\n\nSKILLS\nPython, SQL, Tableau\n",
                    "Name: Omar Haddad\nEducation\nBachelor of Science in Physics, University of Denver, 2016\n",
                ]
            }
        )
        return EntityPredictor(trained.model, data.vocab, data.window, data.tags), example


def confusion_figure(table: pd.DataFrame) -> plt.Figure:
    values = table.drop(columns="gold").to_numpy()
    fig, ax = plt.subplots(figsize=(7.5, 6))
    ax.imshow(np.log1p(values), cmap="Blues")
    ax.set_xticks(range(values.shape[1]), table.columns[1:], rotation=45, ha="right")
    ax.set_yticks(range(values.shape[0]), table["gold"])
    for (i, j), v in np.ndenumerate(values):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
    ax.set(xlabel="predicted (same span)", ylabel="gold", title="Entity confusion (test, exact boundaries)")
    fig.tight_layout()
    return fig


def per_type_figure(per_type: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(per_type))
    arms = {"f1": "Transformer tagger", "baseline_f1": "dictionary + regex baseline"}
    if "spacy_f1" in per_type:
        arms["spacy_f1"] = "spaCy en_core_web_sm (mapped types only)"
    width = 0.8 / len(arms)
    for k, (column, label) in enumerate(arms.items()):
        ax.bar(x + (k - (len(arms) - 1) / 2) * width, per_type[column].fillna(0), width, label=label)
    ax.set_xticks(x, per_type["type"], rotation=30)
    ax.set(ylabel="entity F1 (test)", ylim=(0, 1.05), title="Entity F1 per type")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
