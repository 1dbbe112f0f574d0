"""GMNER / MNER / EEG scores with the H-Index definitions (Yu et al., ACL 2023).

An entity is a ``(start, end, type, region)`` tuple per tweet.

- **MNER**: span and type match.
- **EEG** (entity extraction & grounding): span and region match (type ignored).
- **GMNER**: span, type and region all match.

Region match: a predicted box matches when its IoU with *any* gold box of that entity is
``>= 0.5``; an ungroundable gold entity (no gold box) matches a predicted ``None`` region.
Micro precision = correct / predicted, recall = correct / gold.

When images are unavailable (the Twitter-GMNER benchmark here), the region is judged through
groundability: pass ``region_mode="groundability"`` and predicted regions as booleans
(groundable or not). A groundable prediction then counts as matching a groundable gold
entity, which is an *upper bound* on the box-level score (it assumes the box would be right);
``region_mode="groundability_lower"`` counts every groundable entity as wrong, a *lower bound*.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

from ..document import Box
from ..errors import GraphmieError
from .prf import PRF

IOU_THRESHOLD = 0.5


def region_matches(pred: Optional[Box], gold_boxes: Sequence[Box], threshold: float = IOU_THRESHOLD) -> bool:
    """H-Index region match: None vs no gold box, or IoU >= threshold with any gold box."""
    if pred is None:
        return len(gold_boxes) == 0
    return any(pred.iou(g) >= threshold for g in gold_boxes)


def _match(pred, gold_boxes, mode: str) -> bool:
    if mode == "box":
        return region_matches(pred, gold_boxes)
    groundable = bool(pred)
    if mode == "groundability":
        return groundable == bool(gold_boxes)
    if mode == "groundability_lower":
        return not groundable and not gold_boxes
    raise GraphmieError("E022", None, name="region_mode", value=mode,
                        choices="box, groundability, groundability_lower")


def gmner_scores(pred: Iterable[Sequence[tuple]], gold: Iterable[Sequence[tuple]],
                 region_mode: str = "box") -> dict:
    """``pred``/``gold``: per tweet, lists of ``(start, end, type, region)``.

    Predicted ``region``: a :class:`Box` or None (``box`` mode), or a bool (groundability modes).
    Gold ``region``: a list of gold boxes (empty = ungroundable).
    Returns ``{"mner": {...}, "eeg": {...}, "gmner": {...}}`` of precision/recall/f1/counts.
    """
    mner, eeg, gmner = PRF(), PRF(), PRF()
    for p_ents, g_ents in zip(pred, gold):
        g_by_span = {(s, e): (t, boxes) for s, e, t, boxes in g_ents}
        n_mner = n_eeg = n_gmner = 0
        for s, e, t, region in p_ents:
            g = g_by_span.get((s, e))
            if g is None:
                continue
            type_ok = g[0] == t
            reg_ok = _match(region, g[1], region_mode)
            n_mner += type_ok
            n_eeg += reg_ok
            n_gmner += type_ok and reg_ok
        for prf, n in ((mner, n_mner), (eeg, n_eeg), (gmner, n_gmner)):
            prf.tp += n
            prf.fp += len(p_ents) - n
            prf.fn += len(g_ents) - n
    return {"mner": mner.as_dict(), "eeg": eeg.as_dict(), "gmner": gmner.as_dict()}


def binary_scores(pred: Sequence[bool], gold: Sequence[bool]) -> dict:
    """Precision/recall/F1 of the positive class (groundable), plus accuracy."""
    tp = sum(p and g for p, g in zip(pred, gold))
    fp = sum(p and not g for p, g in zip(pred, gold))
    fn = sum(g and not p for p, g in zip(pred, gold))
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    acc = sum(p == g for p, g in zip(pred, gold)) / len(gold) if gold else 0.0
    return {"precision": prec, "recall": rec, "f1": f1, "accuracy": acc, "n": len(gold)}
