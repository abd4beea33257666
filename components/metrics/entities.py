"""Entity-level scores of predicted spans against gold spans: a prediction counts only when its start, end and
label all equal a gold span's (exact match, as CoNLL's conlleval counts). Spans are anything with ``start``,
``end`` and ``label`` attributes, one list per document.

- ``entity_scores``: precision, recall, F1 micro-averaged over all entities, and per type.
- ``entity_confusion``: gold type (rows, plus "(none)" for predictions that match no gold span's boundaries)
  against predicted type (columns, plus "(missed)" for gold spans no prediction has the boundaries of), counting
  span pairs with the same boundaries: a wrong label sits off the diagonal, a boundary error in the margins.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

NONE, MISSED = "(none)", "(missed)"


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def entity_scores(gold: list[list], predicted: list[list], types: list[str] | None = None) -> dict[str, float]:
    """``precision``, ``recall``, ``f1`` (micro) and ``precision_X``, ``recall_X``, ``f1_X``, ``support_X`` per
    type X (``types``, else every type in gold or predictions)."""
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    for g, p in zip(gold, predicted, strict=True):
        g_set = {(s.start, s.end, s.label) for s in g}
        p_set = {(s.start, s.end, s.label) for s in p}
        tp.update(label for *_, label in g_set & p_set)
        n_pred.update(label for *_, label in p_set)
        n_gold.update(label for *_, label in g_set)
    out = dict(zip(("precision", "recall", "f1"), _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))))
    for t in types if types is not None else sorted(n_gold | n_pred):
        scores = _prf(tp[t], n_pred[t], n_gold[t])
        out |= {f"precision_{t}": scores[0], f"recall_{t}": scores[1], f"f1_{t}": scores[2]}
        out[f"support_{t}"] = float(n_gold[t])
    return out


def entity_confusion(gold: list[list], predicted: list[list], types: list[str]) -> pd.DataFrame:
    """Counts of (gold type, predicted type) over span boundaries, as a table with a ``gold`` column."""
    rows, cols = [*types, NONE], [*types, MISSED]
    counts = Counter()
    for g, p in zip(gold, predicted, strict=True):
        g_at = {(s.start, s.end): s.label for s in g}
        p_at = {(s.start, s.end): s.label for s in p}
        for where, label in g_at.items():
            counts[label, p_at.get(where, MISSED)] += 1
        for where, label in p_at.items():
            if where not in g_at:
                counts[NONE, label] += 1
    table = pd.DataFrame([[counts[r, c] for c in cols] for r in rows], columns=cols)
    table.insert(0, "gold", rows)
    return table
