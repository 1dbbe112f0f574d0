"""Running the ensemble on one page, and the dev figures (gold boxes; and end to end from OCR)."""
from __future__ import annotations

import torch

from ...data.funsd import gold_links
from ...document import Document
from ...errors import GraphmieError
from ...evaluation.form import end_to_end, entity_prf, match_boxes
from ...evaluation.prf import PRF
from .data import Sample, make_graph, pair_inputs
from .features import Featurizer
from .model import LABELS, Ensemble, constrained_decode


@torch.inference_mode()
def run_page(net: Ensemble, doc: Document, data, cfg: dict, gold_labels: bool = False,
             constrained: bool | None = None) -> dict:
    """Labels (the gold ones with ``gold_labels``), label confidences and decoded links
    ``(question, answer, p)`` of one page whose layout graph is ``data``; ``constrained``
    overrides ``decode.constrained``."""
    n = len(doc.entities)
    hs = net.encode(data)
    conf, pred = net.label_probs(hs, n).max(-1)
    labels = [e.label for e in doc.entities] if gold_labels else [LABELS[i] for i in pred.tolist()]
    pairs, px = pair_inputs(doc, labels, cfg["graph"]["candidates_k"])
    links = []
    if pairs:
        p = net.link_probs(hs, torch.tensor(pairs), px)
        d = cfg["decode"]
        links = constrained_decode(pairs, p.tolist(), d["threshold"], d["second_threshold"],
                                   d["constrained"] if constrained is None else constrained)
    return {"labels": labels, "label_scores": conf.tolist(), "links": links}


def score_samples(net: Ensemble, cfg: dict, samples: list[Sample], progress: bool = False) -> dict:
    """All dev figures for gold-annotated samples: linking with gold / predicted labels, entity
    labelling, unconstrained decoding, the baseline rule, candidate recall."""
    from tqdm import tqdm

    from layout.linking import rule_links

    m = {k: PRF() for k in ("gold", "gold_unconstrained", "pred", "entity", "rule_gold", "rule_pred")}
    cand = [0, 0]
    correct = total = 0
    for s in tqdm(samples, desc="scoring", unit="form", disable=not progress):
        out = run_page(net, s.doc, s.data, cfg, gold_labels=True)
        m["gold"].update({(q, a) for q, a, _ in out["links"]}, s.gold)
        out_u = run_page(net, s.doc, s.data, cfg, gold_labels=True, constrained=False)
        m["gold_unconstrained"].update({(q, a) for q, a, _ in out_u["links"]}, s.gold)
        outp = run_page(net, s.doc, s.data, cfg)
        m["pred"].update({(q, a) for q, a, _ in outp["links"]}, s.gold)
        gl = [e.label for e in s.doc.entities]
        entity_prf(dict(enumerate(outp["labels"])), dict(enumerate(gl)), m["entity"])
        correct += sum(p == g for p, g in zip(outp["labels"], gl))
        total += len(gl)
        boxes = [e.box for e in s.doc.entities]
        m["rule_gold"].update(rule_links(boxes, gl), s.gold)
        m["rule_pred"].update(rule_links(boxes, outp["labels"]), s.gold)
        cset = {tuple(p) for p in s.pairs.tolist()}
        cand[0] += len(s.gold & cset)
        cand[1] += len(s.gold)
    return {"precision": m["gold"].precision, "recall": m["gold"].recall, "f1": m["gold"].f1,
            "f1_predicted_labels": m["pred"].f1, "precision_predicted_labels": m["pred"].precision,
            "recall_predicted_labels": m["pred"].recall,
            "entity_precision": m["entity"].precision, "entity_recall": m["entity"].recall,
            "entity_f1": m["entity"].f1, "entity_accuracy_4class": correct / max(total, 1),
            "f1_unconstrained_decoding": m["gold_unconstrained"].f1,
            "baseline_f1": m["rule_gold"].f1, "baseline_precision": m["rule_gold"].precision,
            "baseline_recall": m["rule_gold"].recall, "baseline_f1_predicted_labels": m["rule_pred"].f1,
            "candidate_recall": cand[0] / max(cand[1], 1), "forms": len(samples), "gold_links": cand[1]}


class EndToEnd:
    """Pooled end-to-end figures over pages: blocks matched to gold at IoU ≥ ``iou`` and, the
    text-matched variant, by text (:func:`~graphmie.evaluation.form.match_texts`)."""

    def __init__(self, iou: float = 0.5):
        self.iou = iou
        self.links, self.ents, self.block = PRF(), PRF(), PRF()
        self.links_text, self.ents_text, self.block_text = PRF(), PRF(), PRF()
        self.pages = 0

    def add(self, gold: Document, od: Document, labels: list[str], links: list[tuple[int, int, float]]) -> None:
        from ...evaluation.form import match_texts

        pb = {e.id: e.box for e in od.entities}
        pl = {e.id: lab for e, lab in zip(od.entities, labels)}
        plinks = {(od.entities[q].id, od.entities[a].id) for q, a, _ in links}
        gb = {e.id: e.box for e in gold.entities}
        gl = {e.id: e.label for e in gold.entities}
        gold_l = gold_links(gold)
        m = match_boxes(pb, gb, self.iou)
        end_to_end(pb, pl, plinks, gb, gl, gold_l, self.iou, self.links, self.ents, matching=m)
        self.block.add(tp=len(m), fp=len(pb) - len(m), fn=len(gb) - len(m))
        mt = match_texts({e.id: (e.box, e.text) for e in od.entities}, {e.id: (e.box, e.text) for e in gold.entities})
        end_to_end(pb, pl, plinks, gb, gl, gold_l, self.iou, self.links_text, self.ents_text, matching=mt)
        self.block_text.add(tp=len(mt), fp=len(pb) - len(mt), fn=len(gb) - len(mt))
        self.pages += 1

    def figures(self, prefix: str = "ocr_") -> dict:
        return {f"{prefix}forms": self.pages, f"{prefix}link_f1": self.links.f1,
                f"{prefix}link_precision": self.links.precision, f"{prefix}link_recall": self.links.recall,
                f"{prefix}entity_f1": self.ents.f1, f"{prefix}block_f1": self.block.f1,
                f"{prefix}link_f1_text_matched": self.links_text.f1,
                f"{prefix}entity_f1_text_matched": self.ents_text.f1,
                f"{prefix}block_f1_text_matched": self.block_text.f1, f"{prefix}match_iou": self.iou}


#: ``evaluate_ocr(..., segmentation=...)``: the blocks from the OCR words' alignment to the gold
#: entities (:class:`OracleSegmenter`); unaligned words each their own block, or dropped
ORACLE_SEGMENTATIONS = {"oracle": "single", "oracle_drop": "drop"}


def oracle_blocks(words, gold: Document, unaligned: str = "single") -> tuple[list[list[int]], list[int]]:
    """OCR words grouped exactly as their alignment to ``gold`` says
    (:func:`~.segment.align_words`): one block per gold entity that some word aligns to (its
    words in reading order). A word that aligns to no entity is its own block (``unaligned=
    "single"``) or left out of every block (``"drop"``). Returns the blocks, ordered top to
    bottom then left to right as the learned segmenter orders them, and the gold entity index of
    each block (``-1`` for an unaligned word's block)."""
    from .segment import align_words, reading_order

    if unaligned not in ("single", "drop"):
        raise ValueError(f"unaligned must be 'single' or 'drop', not {unaligned!r}")
    owner = align_words(words, gold)
    groups: dict[int, list[int]] = {}
    for i, k in enumerate(owner):
        if k >= 0:
            groups.setdefault(k, []).append(i)
    blocks = [(k, reading_order(words, g)) for k, g in groups.items()]
    if unaligned == "single":
        blocks += [(-1, [i]) for i, k in enumerate(owner) if k < 0]
    blocks.sort(key=lambda kb: (min(words[i].box.y0 for i in kb[1]), min(words[i].box.x0 for i in kb[1])))
    return [b for _, b in blocks], [k for k, _ in blocks]


class OracleSegmenter:
    """A segmenter for one annotated page that groups its OCR words by :func:`oracle_blocks`
    (the ceiling the OCR words leave to any segmenter); after a call, ``entity_of`` holds the
    gold entity index of each block (``-1``: none)."""

    def __init__(self, gold: Document, unaligned: str = "single"):
        self.gold, self.unaligned = gold, unaligned
        self.name = "oracle" if unaligned == "single" else "oracle_drop"
        self.entity_of: list[int] = []

    def __call__(self, words, width: float, height: float) -> list[list[int]]:
        blocks, self.entity_of = oracle_blocks(words, self.gold, self.unaligned)
        return blocks


def ocr_document(gold: Document, engine: str = "rapidocr", segmenter=None) -> tuple[Document, float]:
    """The OCR form Document of an annotated page's image (cached OCR words; blocks from
    ``segmenter``, else the rule) and the seconds its OCR took when it ran."""
    from layout.ocr import cached_ocr_words, page_form

    img = gold.pages[0].image
    if not img:
        raise GraphmieError("E001", gold.source, detail="no page image beside the annotation")
    words, seconds = cached_ocr_words(img, engine)
    pg = gold.pages[0]
    return page_form(words, img, pg.width, pg.height, engine, 0, "px", segmenter), seconds


def evaluate_ocr(net: Ensemble, cfg: dict, docs: list[Document], feats: Featurizer, engine: str = "rapidocr",
                 iou: float = 0.5, segmenter=None, segmentation: str | None = None, gold_labels: bool = False,
                 gold_links: bool = False) -> dict:
    """End to end: OCR the page images, segment the words into blocks (``segmenter``, else the
    rule), predict, match blocks to gold (:class:`EndToEnd`). OCR words are cached per image.

    ``segmentation`` ``"oracle"`` / ``"oracle_drop"`` (:data:`ORACLE_SEGMENTATIONS`) replaces the
    segmenter by each page's :class:`OracleSegmenter`; with it, ``gold_labels`` gives each block
    the label of its aligned gold entity (``other`` for an unaligned word) instead of the
    predicted one, and ``gold_links`` also replaces the linker by the gold question→answer links
    between the aligned entities (no model: the ceiling the OCR words leave)."""
    from tqdm import tqdm

    from layout.ocr import rapidocr_engine

    from ...data.funsd import gold_links as page_gold_links

    if segmentation is not None and segmentation not in ORACLE_SEGMENTATIONS:
        raise GraphmieError("E022", None, name="segmentation", value=segmentation,
                            choices=", ".join(ORACLE_SEGMENTATIONS))
    if (gold_labels or gold_links) and segmentation is None:
        raise ValueError("gold_labels / gold_links need an oracle segmentation")
    if engine == "rapidocr":
        rapidocr_engine()                                # load the OCR models before timing
    acc = EndToEnd(iou)
    ocr_s = 0.0
    for d in tqdm(docs, desc="OCR end to end", unit="form"):
        seg = OracleSegmenter(d, ORACLE_SEGMENTATIONS[segmentation]) if segmentation else segmenter
        od, dt = ocr_document(d, engine, seg)
        ocr_s += dt
        if not od.entities:                              # an oracle that dropped every word
            acc.add(d, od, [], [])
            continue
        if gold_links:
            labels = [d.entities[k].label if k >= 0 else "other" for k in seg.entity_of]
            gl = page_gold_links(d)
            gid = [d.entities[k].id if k >= 0 else None for k in seg.entity_of]
            links = [(i, j, 1.0) for i, gi in enumerate(gid) for j, gj in enumerate(gid)
                     if gi is not None and gj is not None and (gi, gj) in gl]
            acc.add(d, od, labels, links)
            continue
        if gold_labels:
            for e, k in zip(od.entities, seg.entity_of):
                e.label = d.entities[k].label if k >= 0 else "other"
        out = run_page(net, od, make_graph(od, feats, cfg["graph"]), cfg, gold_labels=gold_labels)
        acc.add(d, od, out["labels"], out["links"])
    name = segmentation or (getattr(segmenter, "name", "rule") if segmenter else "rule")
    return {**acc.figures(), "ocr_segmentation": name,
            "ocr_labels": "gold" if gold_labels or gold_links else "predicted",
            "ocr_links": "gold" if gold_links else "predicted",
            "ocr_pages_per_s": len(docs) / max(ocr_s, 1e-9),
            "ocr_note": "OCR words are cached per image under the form/ocr cache folder; the rate is the OCR's "
                        "when it ran (bench/bench_form_speed.py times the whole path)"}
