"""Running the ensemble on one page, and the dev figures (gold boxes; and end to end from OCR)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ...config import cache_dir
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


def evaluate_ocr(net: Ensemble, cfg: dict, docs: list[Document], feats: Featurizer, engine: str = "rapidocr",
                 iou: float = 0.5) -> dict:
    """End to end: OCR the page images, predict, match blocks to gold by IoU. OCR words are
    cached per image under the ``form/ocr`` cache folder."""
    from tqdm import tqdm

    from layout.ocr import load_page, ocr_words, rapidocr_engine, words_to_form

    from ...document import Box

    links, ents, block = PRF(), PRF(), PRF()
    ocr_s = 0.0
    if engine == "rapidocr":
        rapidocr_engine()                                # load the OCR models before timing
    for d in tqdm(docs, desc="OCR end to end", unit="form"):
        img = d.pages[0].image
        if not img:
            raise GraphmieError("E001", d.source, detail="no page image beside the annotation")
        cache = cache_dir("form") / "ocr" / f"{engine}_{Path(img).stem}.json"
        if cache.exists():
            words = [(t, Box.from_list(b), c) for t, b, c in json.loads(cache.read_text())]
            ocr_s += json.loads((cache.with_suffix(".time")).read_text())
        else:
            t = time.perf_counter()
            page = load_page(img)
            words = page.words or ocr_words(page.image, engine)
            dt = time.perf_counter() - t
            ocr_s += dt
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps([(t, b.to_list(), c) for t, b, c in words]))
            cache.with_suffix(".time").write_text(json.dumps(dt))
        w, h = d.pages[0].width, d.pages[0].height
        od = words_to_form(words, str(img), w, h, image=str(img), engine=engine)
        out = run_page(net, od, make_graph(od, feats, cfg["graph"]), cfg)
        pb = {e.id: e.box for e in od.entities}
        pl = {e.id: l for e, l in zip(od.entities, out["labels"])}
        plinks = {(od.entities[q].id, od.entities[a].id) for q, a, _ in out["links"]}
        gb = {e.id: e.box for e in d.entities}
        gl = {e.id: e.label for e in d.entities}
        end_to_end(pb, pl, plinks, gb, gl, gold_links(d), iou, links, ents)
        nm = len(match_boxes(pb, gb, iou))
        block.add(tp=nm, fp=len(pb) - nm, fn=len(gb) - nm)
    return {"ocr_forms": len(docs), "ocr_link_f1": links.f1, "ocr_link_precision": links.precision,
            "ocr_link_recall": links.recall, "ocr_entity_f1": ents.f1, "ocr_block_f1": block.f1,
            "ocr_match_iou": iou, "ocr_pages_per_s": len(docs) / max(ocr_s, 1e-9),
            "ocr_note": "OCR words are cached per image under the form/ocr cache folder; the rate is from the "
                        "first run"}
