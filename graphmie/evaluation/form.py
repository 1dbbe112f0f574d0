"""Form scores, as the FUNSD papers define them.

* **Linking** (LayoutXLM / LiLT / GeoLayoutLM "RE" on FUNSD): micro P/R/F1 over
  (question entity, answer entity) pairs of a page. With *gold labels* the model sees the
  gold entity blocks and labels; with *predicted labels* it sees the gold blocks but its
  own labels, so a link whose ends it mislabelled is lost.
* **Entity labelling** (LayoutLM's FUNSD task, entity level): micro P/R/F1 over
  (entity, label) for the labels question, answer and header (``other`` is the
  background class, as the BIO "O" of the sequence-labelling setup).
* **End to end** (no gold boxes): predicted blocks are matched one-to-one to gold blocks by
  box IoU (greedy, highest first, IoU ≥ ``iou``); a predicted link or entity counts only
  through matched blocks, so unmatched predictions are false positives and unmatched gold
  ones false negatives. The **text-matched** variant matches a predicted block to a gold block
  whose box it overlaps when their texts agree (normalised, similarity ≥ ``min_ratio``), so a
  block that reads the right words counts even when its box is looser than IoU 0.5.
"""
from __future__ import annotations

from graphmie.document import Box

from .prf import PRF

SCORED_LABELS = ("question", "answer", "header")


def link_prf(pred: set, gold: set, prf: PRF | None = None) -> PRF:
    return (prf or PRF()).update(pred, gold)


def entity_prf(pred: dict[str, str], gold: dict[str, str], prf: PRF | None = None) -> PRF:
    """``pred``/``gold``: entity id -> label; ``other`` is not scored."""
    p = {(i, l) for i, l in pred.items() if l in SCORED_LABELS}
    g = {(i, l) for i, l in gold.items() if l in SCORED_LABELS}
    return (prf or PRF()).update(p, g)


def match_boxes(pred: dict[str, Box], gold: dict[str, Box], iou: float = 0.5) -> dict[str, str]:
    """Greedy one-to-one matching, highest IoU first: predicted id -> gold id."""
    scored = sorted(((p.iou(g), pi, gi) for pi, p in pred.items() for gi, g in gold.items()
                     if p.intersection_area(g) > 0), reverse=True)
    out, used = {}, set()
    for s, pi, gi in scored:
        if s < iou:
            break
        if pi in out or gi in used:
            continue
        out[pi] = gi
        used.add(gi)
    return out


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def match_texts(pred: dict[str, tuple[Box, str]], gold: dict[str, tuple[Box, str]],
                min_ratio: float = 0.8) -> dict[str, str]:
    """Greedy one-to-one matching of overlapping blocks by text similarity (difflib ratio of the
    lower-cased, blank-normalised texts), best first, at least ``min_ratio``: predicted id -> gold id."""
    from difflib import SequenceMatcher

    scored = []
    for pi, (pb, pt) in pred.items():
        for gi, (gb, gt) in gold.items():
            if pb.intersection_area(gb) > 0:
                r = SequenceMatcher(None, _norm(pt), _norm(gt), autojunk=False).ratio()
                if r >= min_ratio:
                    scored.append((r, pb.iou(gb), pi, gi))
    out, used = {}, set()
    for _, _, pi, gi in sorted(scored, reverse=True):
        if pi in out or gi in used:
            continue
        out[pi] = gi
        used.add(gi)
    return out


def end_to_end(pred_boxes: dict[str, Box], pred_labels: dict[str, str], pred_links: set,
               gold_boxes: dict[str, Box], gold_labels: dict[str, str], gold_links: set, iou: float = 0.5,
               links: PRF | None = None, entities: PRF | None = None,
               matching: dict[str, str] | None = None) -> tuple[PRF, PRF]:
    """Link and entity P/R/F1 through the block matching (``matching``, else IoU ≥ ``iou``)."""
    m = matching if matching is not None else match_boxes(pred_boxes, gold_boxes, iou)
    mapped_links = {(m.get(q, "p:" + q), m.get(a, "p:" + a)) for q, a in pred_links}
    mapped_labels = {m.get(i, "p:" + i): l for i, l in pred_labels.items()}
    return link_prf(mapped_links, gold_links, links), entity_prf(mapped_labels, gold_labels, entities)
