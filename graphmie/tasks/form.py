"""Form relation extraction: a scanned form -> labelled entity blocks -> question→answer links.

Pipeline (RE²-style, see :mod:`graphmie.nn.form_re2` and :mod:`layout.graph`):

1. words with boxes: from a FUNSD annotation (gold words and blocks), or OCR of a page
   image / PDF page (:mod:`layout.ocr`, which also groups the words into blocks);
2. block features: frozen MiniLM sentence embedding + text-shape features;
3. the layout graph: entity nodes + line / block / table region nodes, spatially typed edges;
4. an edge-aware GAT; an entity-label head (question / answer / header / other);
5. question→answer candidates (each answer's k nearest questions), a pairwise scorer, and
   constrained decoding (an answer takes at most one question unless a second is very likely).
"""
from __future__ import annotations

import argparse
import copy
import datetime as _dt
import io
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F

from .. import __version__
from ..data.funsd import LINK_LABEL, dev_split, gold_links, list_annotations, read_funsd
from ..config import cache_dir
from ..document import Document, Provenance, Region, Relation
from ..errors import GraphmieError
from ..evaluation.form import end_to_end, entity_prf, match_boxes
from ..evaluation.prf import PRF
from ..io import atomic_write_text, load_weights, save_weights
from .base import InputItem, Task

LABELS = ("question", "answer", "header", "other")
MODEL_NAME = "graphmie.form.re2"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
SHIPPED = WEIGHTS_DIR / "form_re2.safetensors"
CACHE_DIR = cache_dir("form")
SHAPE_DIM = 10
INK_DIM = 4
DEFAULT_CONFIG = {
    "graph": {"k": 8, "regions": True, "edge_types": True, "candidates_k": 12},
    "model": {"hidden": 128, "layers": 2, "heads": 4, "dropout": 0.1},
    "decode": {"threshold": 0.5, "second_threshold": 0.7, "constrained": True},
    "features": {"text": "static"},
}
COLORS = {"question": (31, 119, 180), "answer": (44, 160, 44), "header": (214, 39, 40), "other": (150, 150, 150)}


# --- features --------------------------------------------------------------------------------
def text_shape(text: str) -> list[float]:
    """Cheap cues of a block's role: colon at the end, digits, capitals, length, blanks."""
    t = text.strip()
    n = max(len(t), 1)
    words = t.split()
    return [float(t.endswith(":")), float(":" in t), sum(c.isdigit() for c in t) / n,
            sum(c.isupper() for c in t) / n, float(t.isupper() and any(c.isalpha() for c in t)),
            math.log1p(len(words)) / 3, math.log1p(len(t)) / 5, float(not t),
            float(t.endswith("?")), float(any(c in "_$%/#" for c in t))]


class Featurizer:
    """Entity features = MiniLM(text) ‖ text_shape(text). A disk cache of the MiniLM vectors
    (``CACHE_DIR/minilm.pt``) is used for training/evaluation runs over the dataset."""

    def __init__(self, disk_cache: bool = False, text: str = "minilm"):
        from ..encoders.text import get_text_encoder

        if text not in ("minilm", "static"):
            raise GraphmieError("E011", None, detail=f"features.text = {text!r} (minilm or static)")
        self.encoder = get_text_encoder() if text == "minilm" else StaticTextEncoder.shared()
        self.disk_cache = disk_cache and text == "minilm"
        self.path = CACHE_DIR / "minilm.pt"
        if disk_cache and self.path.exists():
            try:
                self.encoder._cache.update(torch.load(self.path, weights_only=True))
            except Exception:  # noqa: BLE001 - a broken cache is just recomputed
                pass

    def warm(self, texts: list[str]) -> None:
        self.encoder.encode(texts, progress=True)
        if self.disk_cache:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            torch.save(dict(self.encoder._cache), tmp)
            os.replace(tmp, self.path)            # atomic: a parallel reader never sees half a file

    def __call__(self, texts: list[str], boxes=None, image: str | None = None) -> torch.Tensor:
        emb = self.encoder.encode(texts)
        shape = torch.tensor([text_shape(t) for t in texts], dtype=torch.float32).reshape(-1, SHAPE_DIM)
        ink = ink_features(image, boxes) if boxes is not None else torch.zeros(len(texts), INK_DIM)
        return torch.cat([emb.float(), shape, ink], -1)


class StaticTextEncoder:
    """The fast text path: mean of MiniLM's *input* word-piece embeddings (no transformer
    pass), L2-normalised, 384-d. About 100x cheaper than the contextual encoder."""

    _shared = None

    def __init__(self):
        from ..encoders.text import get_text_encoder

        enc = get_text_encoder()
        self.tokenizer = enc.tokenizer
        self.table = enc.model.get_input_embeddings().weight.detach()
        self.dim = self.table.shape[1]
        self._cache: dict = {}

    @classmethod
    def shared(cls) -> "StaticTextEncoder":
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    @torch.inference_mode()
    def encode(self, texts: list[str], progress: bool = False) -> torch.Tensor:
        out = torch.zeros(len(texts), self.dim)
        ids = self.tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=64)["input_ids"]
        for i, seq in enumerate(ids):
            if seq:
                out[i] = torch.nn.functional.normalize(self.table[seq].mean(0), dim=0)
        return out


def ink_features(image: str | None, boxes) -> torch.Tensor:
    """Cheap visual cues per block from the grey page: ink coverage, darkness, contrast
    (bold print, handwriting and stamps differ), and a flag saying an image was there."""
    import numpy as np

    out = torch.zeros(len(boxes), INK_DIM)
    if not image or not Path(image).exists() or Path(image).suffix.lower() == ".pdf":
        return out
    try:
        from PIL import Image

        with Image.open(image) as im:
            g = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except Exception:  # noqa: BLE001 - no image cues for an unreadable image; the text path still works
        return out
    H, W = g.shape
    for i, b in enumerate(boxes):
        x0, y0 = max(int(b.x0), 0), max(int(b.y0), 0)
        x1, y1 = min(max(int(math.ceil(b.x1)), x0 + 1), W), min(max(int(math.ceil(b.y1)), y0 + 1), H)
        crop = g[y0:y1, x0:x1]
        if crop.size == 0:
            continue
        out[i] = torch.tensor([float((crop < 0.5).mean()), float(1 - crop.mean()), float(crop.std()), 1.0])
    return out


@dataclass
class Sample:
    doc: Document
    data: object                       # torch_geometric Data
    labels: torch.Tensor | None        # gold label index per entity
    gold: set                          # gold (question idx, answer idx)
    pairs: torch.Tensor | None = None  # candidates from gold labels, [P, 2] entity indices
    pair_x: torch.Tensor | None = None
    pair_y: torch.Tensor | None = None


def make_graph(doc: Document, feats: Featurizer, gcfg: dict):
    from layout.graph import build_layout_graph

    if not doc.entities:
        raise GraphmieError("E007", doc.source, detail="the page has no entity blocks (no text)")
    page = doc.pages[0] if doc.pages else None
    boxes = [e.box for e in doc.entities]
    w = page.width if page else max(b.x1 for b in boxes) + 1
    h = page.height if page else max(b.y1 for b in boxes) + 1
    x = feats([e.text for e in doc.entities], boxes, page.image if page else None)
    return build_layout_graph(boxes, w, h, x, k=gcfg["k"], regions=gcfg["regions"], edge_types=gcfg["edge_types"])


def pair_inputs(doc: Document, labels: list[str], k: int) -> tuple[list[tuple[int, int]], torch.Tensor]:
    from layout.linking import PAIR_DIM, candidates, pair_features

    boxes = [e.box for e in doc.entities]
    pairs = candidates(boxes, labels, k)
    if not pairs:
        return [], torch.zeros(0, PAIR_DIM)
    return pairs, torch.from_numpy(pair_features(boxes, pairs, labels))


def make_sample(doc: Document, feats: Featurizer, gcfg: dict) -> Sample:
    data = make_graph(doc, feats, gcfg)
    idx = {e.id: i for i, e in enumerate(doc.entities)}
    gold = {(idx[q], idx[a]) for q, a in gold_links(doc)}
    labels = [e.label for e in doc.entities]
    pairs, px = pair_inputs(doc, labels, gcfg["candidates_k"])
    return Sample(doc=doc, data=data, labels=torch.tensor([LABELS.index(l) for l in labels]), gold=gold,
                  pairs=torch.tensor(pairs, dtype=torch.long).reshape(-1, 2), pair_x=px,
                  pair_y=torch.tensor([float(p in gold) for p in pairs]))


# --- the model wrapper -----------------------------------------------------------------------
class FormModel:
    """A trained :class:`FormRE2`, or an ensemble of them (members trained from different seeds,
    probabilities averaged), with its graph/decoding settings; runs one page."""

    def __init__(self, cfg: dict, state: dict | None = None, members: int = 1):
        from layout.graph import EDGE_DIM, GEO_DIM
        from layout.linking import PAIR_DIM

        from ..nn.form_re2 import FormRE2

        self.cfg = cfg
        if state is not None and any(k.startswith("members.") for k in state):
            members = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("members."))
        self.nets = [FormRE2(in_dim=384 + SHAPE_DIM + INK_DIM, geo_dim=GEO_DIM, edge_dim=EDGE_DIM,
                             pair_dim=PAIR_DIM, **cfg["model"]) for _ in range(members)]
        if state is not None:
            for i, net in enumerate(self.nets):
                prefix = f"members.{i}." if members > 1 else ""
                net.load_state_dict({k[len(prefix):]: v.float() for k, v in state.items() if k.startswith(prefix)})
        for net in self.nets:
            net.eval()

    @property
    def net(self):
        """The single network (training trains one member at a time)."""
        return self.nets[0]

    @classmethod
    def ensemble(cls, models: list["FormModel"]) -> "FormModel":
        out = cls(models[0].cfg, members=0)
        out.nets = [m.net for m in models]
        return out

    def state_dict(self) -> dict:
        if len(self.nets) == 1:
            return self.net.state_dict()
        return {f"members.{i}.{k}": v for i, net in enumerate(self.nets) for k, v in net.state_dict().items()}

    @torch.inference_mode()
    def run(self, doc: Document, feats: Featurizer, gold_labels: bool = False, data=None) -> dict:
        from ..nn.form_re2 import constrained_decode

        data = data if data is not None else make_graph(doc, feats, self.cfg["graph"])
        n = len(doc.entities)
        hs = [net.encode(data.x, data.geo, data.edge_index, data.edge_attr) for net in self.nets]
        probs = torch.stack([torch.softmax(net.entity_logits(h[:n]), -1) for net, h in zip(self.nets, hs)]).mean(0)
        conf, pred = probs.max(-1)
        labels = [e.label for e in doc.entities] if gold_labels else [LABELS[i] for i in pred.tolist()]
        pairs, px = pair_inputs(doc, labels, self.cfg["graph"]["candidates_k"])
        links = []
        if pairs:
            pt = torch.tensor(pairs)
            p = torch.stack([torch.sigmoid(net.link_logits(h, pt, px)) for net, h in zip(self.nets, hs)]).mean(0)
            d = self.cfg["decode"]
            links = constrained_decode(pairs, p.tolist(), d["threshold"], d["second_threshold"], d["constrained"])
        return {"labels": labels, "label_scores": conf.tolist(), "links": links, "data": data}


def _resolve_checkpoint(checkpoint: Path | None) -> tuple[Path, Path]:
    path = Path(checkpoint) if checkpoint else SHIPPED
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.exists():
        raise GraphmieError("E001", path)
    return path, path.with_suffix(".json")


def load_model(checkpoint: Path | None = None) -> tuple[FormModel, dict]:
    path, meta_path = _resolve_checkpoint(checkpoint)
    record = {}
    if meta_path.exists():
        try:
            record = json.loads(meta_path.read_text())
        except json.JSONDecodeError as e:
            raise GraphmieError("E010", meta_path, detail=f"bad record JSON: {e}") from None
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    for sec in cfg:
        cfg[sec].update(record.get("config", {}).get(sec, {}))
    state = load_weights(path)
    try:
        return FormModel(cfg, state), record
    except RuntimeError as e:
        raise GraphmieError("E010", path, detail=f"weights do not fit the model ({str(e)[:200]})") from None


# --- training --------------------------------------------------------------------------------
def read_folder(folder: Path, ids: set[str] | None = None, progress: bool = True) -> list[Document]:
    from tqdm import tqdm

    files = [f for f in list_annotations(folder) if ids is None or f.stem in ids]
    return [read_funsd(f) for f in tqdm(files, desc="reading FUNSD", unit="form", disable=not progress)]


def _batch_forward(net, samples: list[Sample]):
    from torch_geometric.data import Batch

    keep = ["x", "geo", "edge_index", "edge_attr", "node_type"]
    datas = [s.data.__class__(**{k: s.data[k] for k in keep}, num_nodes=s.data.num_nodes) for s in samples]
    b = Batch.from_data_list(datas)
    h = net.encode(b.x, b.geo, b.edge_index, b.edge_attr)
    ent_idx, pairs, px, py = [], [], [], []
    for g, s in enumerate(samples):
        off = int(b.ptr[g])
        n = len(s.doc.entities)
        ent_idx.append(torch.arange(off, off + n))
        if len(s.pairs):
            pairs.append(s.pairs + off)
            px.append(s.pair_x)
            py.append(s.pair_y)
    ent_idx = torch.cat(ent_idx)
    ent_logits = net.entity_logits(h[ent_idx])
    labels = torch.cat([s.labels for s in samples])
    if pairs:
        pairs, px, py = torch.cat(pairs), torch.cat(px), torch.cat(py)
        link_logits = net.link_logits(h, pairs, px)
    else:
        pairs, link_logits, py = torch.zeros(0, 2, dtype=torch.long), torch.zeros(0), torch.zeros(0)
    return ent_logits, labels, link_logits, py, pairs


def score_samples(model: FormModel, samples: list[Sample], feats: Featurizer, progress: bool = False) -> dict:
    """All dev metrics for gold-annotated samples."""
    from tqdm import tqdm

    from layout.linking import rule_links

    m = {k: PRF() for k in ("gold", "gold_unconstrained", "pred", "entity", "rule_gold", "rule_pred")}
    cand = [0, 0]
    correct = total = 0
    dcfg = model.cfg["decode"]
    for s in tqdm(samples, desc="scoring", unit="form", disable=not progress):
        out = model.run(s.doc, feats, gold_labels=True, data=s.data)
        m["gold"].update({(q, a) for q, a, _ in out["links"]}, s.gold)
        model.cfg["decode"] = {**dcfg, "constrained": False}
        out_u = model.run(s.doc, feats, gold_labels=True, data=s.data)
        model.cfg["decode"] = dcfg
        m["gold_unconstrained"].update({(q, a) for q, a, _ in out_u["links"]}, s.gold)
        outp = model.run(s.doc, feats, gold_labels=False, data=s.data)
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
    res = {"precision": m["gold"].precision, "recall": m["gold"].recall, "f1": m["gold"].f1,
           "f1_predicted_labels": m["pred"].f1, "precision_predicted_labels": m["pred"].precision,
           "recall_predicted_labels": m["pred"].recall,
           "entity_precision": m["entity"].precision, "entity_recall": m["entity"].recall,
           "entity_f1": m["entity"].f1, "entity_accuracy_4class": correct / max(total, 1),
           "f1_unconstrained_decoding": m["gold_unconstrained"].f1,
           "baseline_f1": m["rule_gold"].f1, "baseline_precision": m["rule_gold"].precision,
           "baseline_recall": m["rule_gold"].recall, "baseline_f1_predicted_labels": m["rule_pred"].f1,
           "candidate_recall": cand[0] / max(cand[1], 1), "forms": len(samples), "gold_links": cand[1]}
    return res


def train_model(cfg: dict, train_samples: list[Sample], dev_samples: list[Sample] | None, feats: Featurizer,
                log=print) -> tuple[FormModel, dict]:
    from ..nn.form_re2 import constraint_loss, listwise_loss

    tcfg = cfg["training"]
    torch.manual_seed(tcfg.get("seed", 0))
    rng = random.Random(tcfg.get("seed", 0))
    model = FormModel(cfg)
    net = model.net
    opt = torch.optim.AdamW(net.parameters(), lr=tcfg["lr"], weight_decay=tcfg["weight_decay"])
    epochs, bs = tcfg["epochs"], tcfg["batch_size"]
    steps = epochs * math.ceil(len(train_samples) / bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tcfg["lr"], total_steps=max(steps, 1), pct_start=0.1)
    history = []
    t0 = time.time()
    for ep in range(epochs):
        net.train()
        order = train_samples[:]
        rng.shuffle(order)
        tot = 0.0
        for i in range(0, len(order), bs):
            ent_logits, labels, link_logits, py, pairs = _batch_forward(net, order[i:i + bs])
            loss = tcfg.get("entity_weight", 1.0) * F.cross_entropy(ent_logits, labels)
            if len(py):
                pos = py.sum().clamp(min=1)
                loss = loss + tcfg["link_weight"] * F.binary_cross_entropy_with_logits(
                    link_logits, py, pos_weight=((len(py) - pos) / pos).clamp(max=tcfg.get("max_pos_weight", 5.0)))
                loss = loss + tcfg["constraint_weight"] * constraint_loss(link_logits, pairs[:, 1])
                if tcfg.get("listwise_weight"):
                    loss = loss + tcfg["listwise_weight"] * listwise_loss(link_logits, pairs[:, 1], py)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += float(loss)
        rec = {"epoch": ep + 1, "loss": tot / math.ceil(len(order) / bs), "seconds": round(time.time() - t0, 1)}
        if dev_samples and (ep + 1) % tcfg.get("eval_every", 10) == 0 or ep + 1 == epochs:
            net.eval()
            if dev_samples:
                d = score_samples(model, dev_samples, feats)
                rec.update({k: round(d[k], 4) for k in ("f1", "f1_predicted_labels", "entity_f1")})
        history.append(rec)
        log(json.dumps(rec))
    net.eval()
    return model, {"history": history, "train_seconds": round(time.time() - t0, 1)}


# --- the task --------------------------------------------------------------------------------
class FormTask(Task):
    name = "form"

    def __init__(self):
        self.model: FormModel | None = None
        self.record: dict = {}
        self.feats: Featurizer | None = None
        self.gold_labels = False
        self.ocr_engine = "rapidocr"

    # training ---------------------------------------------------------------------------------
    def train(self, config: dict, out_dir: Path) -> dict:
        import sys

        cfg = copy.deepcopy(DEFAULT_CONFIG)
        for sec, vals in config.items():
            if isinstance(vals, dict):
                cfg.setdefault(sec, {}).update(vals)
        torch.set_num_threads(int(cfg["training"].get("threads", 1)))
        dcfg = cfg.get("data", {})
        folder = Path(dcfg.get("path", "../shared/data/funsd/training_data"))
        docs = read_folder(folder)
        train_ids, dev_ids = dev_split([d.id for d in docs], dcfg.get("dev_seed", 0), dcfg.get("dev_fraction", 0.2))
        feats = Featurizer(disk_cache=True, text=cfg["features"]["text"])
        feats.warm([e.text for d in docs for e in d.entities])
        samples = {d.id: make_sample(d, feats, cfg["graph"]) for d in docs}
        tr = [samples[i] for i in train_ids]
        dv = [samples[i] for i in dev_ids]
        # an ensemble of `training.ensemble` members, trained from seeds seed, seed+1, ...
        members, info = [], {"train_seconds": 0.0, "history": []}
        for k in range(int(cfg["training"].get("ensemble", 1))):
            mcfg = copy.deepcopy(cfg)
            mcfg["training"]["seed"] = cfg["training"].get("seed", 0) + k
            m, inf = train_model(mcfg, tr, dv, feats, log=lambda s: print(s, file=sys.stderr))
            members.append(m)
            info["train_seconds"] += inf["train_seconds"]
            info["history"].append(inf["history"])
        model = FormModel.ensemble(members)
        metrics = score_samples(model, dv, feats)
        out_dir = Path(out_dir)
        record = {"model": MODEL_NAME, "version": __version__, "config": {k: cfg[k] for k in cfg if k != "meta"},
                  "data": {"path": str(folder), "train_forms": len(tr), "dev_forms": len(dv), "dev_seed":
                           dcfg.get("dev_seed", 0), "dev_fraction": dcfg.get("dev_fraction", 0.2), "dev_ids": dev_ids},
                  "command": f"python3 -m graphmie train {cfg.get('meta', {}).get('config_path', 'configs/form_re2.toml')}"
                             + (" --set output.ship=true" if cfg.get("output", {}).get("ship") else ""),
                  "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  "train_seconds": round(info["train_seconds"], 1), "members": len(members),
                  "history": info["history"] if len(members) > 1 else info["history"][0], "dev_metrics": metrics}
        targets = [out_dir / "model.safetensors"]
        if cfg.get("output", {}).get("ship"):
            targets.append(WEIGHTS_DIR / f"{cfg['output'].get('name', 'form_re2')}.safetensors")
        for t in targets:
            save_weights(model.state_dict(), t, half=True, metadata={"model": MODEL_NAME})
            atomic_write_text(t.with_suffix(".json"), json.dumps(record, indent=2))
        from ..config import save_run_record

        save_run_record(out_dir, cfg, metrics, {"train_seconds": info["train_seconds"]})
        return metrics

    # evaluation -------------------------------------------------------------------------------
    def evaluate(self, data: Path, split: str | None = None, checkpoint: Path | None = None, **options) -> dict:
        split = split or options.pop("split", None)
        model, record = load_model(checkpoint)
        docs = read_folder(Path(data))
        if split in ("dev", "train"):
            dev_ids = set(record.get("data", {}).get("dev_ids", []))
            if not dev_ids:
                raise GraphmieError("E011", checkpoint or SHIPPED, detail="the weights' record lists no dev split")
            docs = [d for d in docs if (d.id in dev_ids) == (split == "dev")]
        elif split not in (None, "all"):
            raise GraphmieError("E009", None, detail=f"split {split!r} (use dev, train or all)")
        limit = options.get("limit")
        feats = Featurizer(disk_cache=True, text=model.cfg["features"]["text"])
        feats.warm([e.text for d in docs for e in d.entities])
        samples = [make_sample(d, feats, model.cfg["graph"]) for d in docs]
        t = time.perf_counter()
        res = score_samples(model, samples, feats, progress=True)
        res["split"] = split or "all"
        res["eval_seconds"] = round(time.perf_counter() - t, 2)
        if options.get("ocr"):
            ocr_docs = docs[: int(limit)] if limit else docs
            res.update(self.evaluate_ocr(model, ocr_docs, feats, engine=options.get("engine", "rapidocr")))
        return res

    def evaluate_ocr(self, model: FormModel, docs: list[Document], feats: Featurizer, engine: str = "rapidocr",
                     iou: float = 0.5) -> dict:
        """End to end: OCR the page images, predict, match blocks to gold by IoU."""
        from tqdm import tqdm

        from layout.ocr import load_page, ocr_words, words_to_form

        from ..document import Box

        links, ents, block = PRF(), PRF(), PRF()
        ocr_s = 0.0
        if engine == "rapidocr":
            from layout.ocr import _rapidocr

            _rapidocr()                                   # load the OCR models before timing
        for d in tqdm(docs, desc="OCR end to end", unit="form"):
            img = d.pages[0].image
            if not img:
                raise GraphmieError("E001", d.source, detail="no page image beside the annotation")
            cache = CACHE_DIR / "ocr" / f"{engine}_{Path(img).stem}.json"
            if cache.exists():
                words = [(t, Box.from_list(b), c) for t, b, c in json.loads(cache.read_text())]
                ocr_s += json.loads((cache.with_suffix(".time")).read_text())
            else:
                t = time.perf_counter()
                page_img, words = load_page(img)
                words = words or ocr_words(page_img, engine)
                dt = time.perf_counter() - t
                ocr_s += dt
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_text(json.dumps([(t, b.to_list(), c) for t, b, c in words]))
                cache.with_suffix(".time").write_text(json.dumps(dt))
            w, h = d.pages[0].width, d.pages[0].height
            od = words_to_form(words, str(img), w, h, image=str(img), engine=engine)
            out = model.run(od, feats)
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
                "ocr_note": "OCR words are cached per image under CACHE_DIR/ocr; the rate is from the first run"}

    # extraction -------------------------------------------------------------------------------
    def add_extract_args(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--gold-labels", action="store_true",
                            help="FUNSD JSON input: keep the gold entity labels, predict only the links")
        parser.add_argument("--ocr", dest="ocr_engine", default="rapidocr", choices=["rapidocr", "tesseract"],
                            help="OCR engine for images and PDFs (default rapidocr)")
        parser.add_argument("--page", type=int, default=0, help="PDF page to read (0-based)")

    def iter_inputs(self, paths: list[Path], args: argparse.Namespace) -> Iterator[InputItem]:
        self.gold_labels = bool(getattr(args, "gold_labels", False))
        engine = getattr(args, "ocr_engine", "rapidocr")
        page = getattr(args, "page", 0)
        for p in paths:
            p = Path(p)
            if p.suffix.lower() == ".json":
                yield str(p), (lambda p=p: read_funsd(p))
            else:
                from layout.ocr import ocr_form

                yield str(p), (lambda p=p: ocr_form(p, engine=engine, page=page))

    def load(self, checkpoint: Path | None = None) -> None:
        self.model, self.record = load_model(checkpoint)
        self.feats = Featurizer(text=self.model.cfg["features"]["text"])

    def predict(self, doc: Document) -> Document:
        if self.model is None:
            self.load()
        use_gold = self.gold_labels and doc.meta.get("gold")
        out = self.model.run(doc, self.feats, gold_labels=bool(use_gold))
        version = self.record.get("date", __version__)
        for e, lab, sc in zip(doc.entities, out["labels"], out["label_scores"]):
            if not use_gold:
                e.label = lab
                e.provenance = Provenance(source=doc.source, page=e.page or 0, box=e.box, model=MODEL_NAME,
                                          model_version=version, score=round(float(sc), 4))
        ents = doc.entities
        doc.relations = [
            Relation(id=f"r{k}", head=ents[q].id, tail=ents[a].id, label=LINK_LABEL,
                     provenance=Provenance(source=doc.source, page=0, box=ents[q].box.union(ents[a].box),
                                           model=MODEL_NAME, model_version=version, score=round(float(p), 4)))
            for k, (q, a, p) in enumerate(sorted(out["links"], key=lambda t: (t[1], t[0])))]
        n_old = len(doc.regions)
        for k, (kind, members) in enumerate(out["data"].regions):
            box = ents[members[0]].box
            for i in members[1:]:
                box = box.union(ents[i].box)
            doc.regions.append(Region(id=f"{kind}{k}", box=box, kind=kind, page=0,
                                      children=[ents[i].id for i in members],
                                      provenance=Provenance(source=doc.source, page=0, box=box,
                                                            model="layout.regions", model_version=__version__)))
        doc.meta.update({"model": MODEL_NAME, "labels_from": "gold" if use_gold else "model",
                         "layout_regions": len(doc.regions) - n_old})
        return doc

    def extra_outputs(self, doc: Document) -> dict[str, bytes]:
        return {".png": render_page(doc)}


def render_page(doc: Document, max_side: int = 1600) -> bytes:
    """The page with entity boxes coloured by label and question→answer arrows."""
    from PIL import Image, ImageDraw

    page = doc.pages[0] if doc.pages else None
    img = None
    if page and page.image and Path(page.image).suffix.lower() != ".pdf" and Path(page.image).exists():
        try:
            from ..io import open_image

            img = open_image(page.image)
        except GraphmieError:
            img = None
    if img is None:
        w = int(page.width) if page else int(max((e.box.x1 for e in doc.entities), default=100) + 10)
        h = int(page.height) if page else int(max((e.box.y1 for e in doc.entities), default=100) + 10)
        img = Image.new("RGB", (max(w, 1), max(h, 1)), "white")
        d0 = ImageDraw.Draw(img)
        for e in doc.entities:
            d0.text((e.box.x0, e.box.y0), e.text[:60], fill=(0, 0, 0))
    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        img = img.resize((int(img.size[0] * scale), int(img.size[1] * scale)))
    over = Image.new("RGBA", img.size, (0, 0, 0, 0))
    dr = ImageDraw.Draw(over)
    byid = {e.id: e for e in doc.entities}
    for e in doc.entities:
        c = COLORS.get(e.label, (120, 120, 120))
        b = [v * scale for v in e.box.to_list()]
        dr.rectangle(b, outline=c + (255,), fill=c + (40,), width=2)
    for r in doc.relations:
        q, a = byid.get(r.head), byid.get(r.tail)
        if q is None or a is None:
            continue
        (x0, y0), (x1, y1) = [(v * scale) for v in q.box.center], [(v * scale) for v in a.box.center]
        dr.line([(x0, y0), (x1, y1)], fill=(255, 127, 14, 255), width=2)
        ang = math.atan2(y1 - y0, x1 - x0)
        for s in (+0.45, -0.45):
            dr.line([(x1, y1), (x1 - 9 * math.cos(ang + s), y1 - 9 * math.sin(ang + s))], fill=(255, 127, 14, 255),
                    width=2)
    img = Image.alpha_composite(img.convert("RGBA"), over).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
