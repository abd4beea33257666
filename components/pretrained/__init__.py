"""Pretrained models that install as packages (no download at run time), as comparison arms beside the projects'
own nets: dlib's face encoder (``dlib_faces``), spaCy's small English NER pipeline (``spacy_ner``)."""
