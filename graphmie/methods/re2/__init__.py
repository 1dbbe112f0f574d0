"""RE² (Ramu et al., "RE²: Region-Aware Relation Extraction from Visually Rich Documents",
NAACL 2024) for forms: labelled entity blocks and question→answer links.

Follows the paper:

* the **layout graph** holds entity nodes *and* region nodes (text lines, block stacks,
  table-like groups; :mod:`layout.regions`), and its edges are typed by the spatial relation
  of their ends (direction sector, distance bucket, alignment, containment; :mod:`layout.graph`);
* messages pass with an **edge-aware GAT** (GATv2 with edge features in the attention,
  :class:`~graphmie.nn.edge_gat.EdgeGATLayer`);
* links are scored pairwise, trained with RE²'s **constraint objective** (an answer's link
  probabilities sum to at most 1) on top of the pair loss;
* **constrained decoding**: an answer keeps its best question, a second one only when very likely.

Differs: the block text is a frozen vector (MiniLM's mean input word-piece embedding, or its
frozen sentence embedding) plus text-shape and ink cues, not a fine-tuned layout-aware
transformer; RE²'s region-level pretraining is not done; link candidates are each answer's
``candidates_k`` nearest questions plus a geometric rule's pick; a listwise loss (an answer's
candidates + "none" in one softmax) is added; the shipped model is an ensemble of members
trained from consecutive seeds, their probabilities averaged.

Parts: :mod:`.features` (block features), :mod:`.data` (graphs, candidates, samples, batches),
:mod:`.model` (network, losses, decoding, ensemble), :mod:`.train` (the Trainer hooks),
:mod:`.evaluate` (dev figures, end to end from OCR).
"""
from __future__ import annotations

import time
from pathlib import Path

from ... import __version__
from ...data.funsd import LINK_LABEL
from ...document import Document, Provenance, Region, Relation
from ...engine.checkpoint import Checkpoint, load_state_into
from ...engine.method import Method, Result
from ...errors import GraphmieError
from .data import make_graph, make_sample, read_folder
from .evaluate import evaluate_ocr, run_page, score_samples
from .features import Featurizer
from .model import LABELS, Ensemble, build_network

MODEL_NAME = "graphmie.form.re2"
SPLITS = ("dev", "train", "all")


class RE2(Method):
    name = "re2"
    task = "form"
    model_name = MODEL_NAME
    schema = {
        "data": {"path": "../shared/data/funsd/training_data", "dev_seed": 0, "dev_fraction": 0.2,
                 "ocr_blocks": False},
        "graph": {"k": 8, "regions": True, "edge_types": True, "candidates_k": 12},
        "model": {"hidden": 128, "layers": 2, "heads": 4, "dropout": 0.1},
        "training": {"epochs": 50, "batch_size": 8, "lr": 2e-3, "weight_decay": 1e-4, "entity_weight": 1.0,
                     "link_weight": 1.0, "constraint_weight": 0.5, "listwise_weight": 1.0, "max_pos_weight": 5.0,
                     "seed": 0, "ensemble": 5, "threads": 1, "eval_every": 25},
        "decode": {"threshold": 0.5, "second_threshold": 0.7, "constrained": True},
        "features": {"text": "static"},
        "segment": {"weights": "form_segment", "train": False, "epochs": 30, "threshold": 0.7, "k": 6,
                    "label_weight": 0.0, "line_cues": True, "ensemble": 1},
        "output": {"ship": False, "name": "form_re2"},
    }
    eval_options = {"ocr": False, "limit": 0, "engine": "rapidocr", "segment": "learned"}

    def __init__(self, ckpt: Checkpoint, cfg: dict, net: Ensemble):
        super().__init__(ckpt)
        self.config, self.net = cfg, net
        self.feats = Featurizer(cfg["features"]["text"])
        self._segmenter = None

    @property
    def segmenter(self):
        """The learned OCR word segmenter these weights were trained with (``segment.weights``:
        a shipped name, a file or a run folder), loaded on first use."""
        if self._segmenter is None:
            from .segment import load_segmenter

            spec = self.config["segment"]["weights"]
            near = self.ckpt.path.parent / "segment.safetensors"
            self._segmenter = load_segmenter(near if self.ckpt.path.name == "model.safetensors" and near.exists()
                                             else spec)
        return self._segmenter

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "RE2":
        cfg = cls.resolve_config(ckpt.config, ckpt.path)
        if tuple(ckpt.meta.get("labels", ())) != LABELS:
            raise GraphmieError("E025", ckpt.path, detail=f"labels {ckpt.meta.get('labels')!r}, "
                                f"expected {list(LABELS)}")
        net = Ensemble([build_network(cfg) for _ in range(int(ckpt.meta.get("members", 1)))])
        load_state_into(net.checkpoint_module(), ckpt)
        net.eval()
        return cls(ckpt, cfg, net)

    def predict(self, doc: Document, gold_labels: bool = False) -> Result:
        """Labels (kept gold with ``gold_labels`` on an annotated form), links and the layout
        regions, each with provenance naming its page. A document of several pages (a PDF) is
        predicted page by page: each page's entities get their own layout graph, links join
        entities of one page only, and every fact keeps its page. The ``layout_graph`` artifact
        is the page's graph for a one-page document, else ``{page index: graph}`` (pages with entities)."""
        use_gold = bool(gold_labels and doc.meta.get("gold"))
        by_page: dict[int, list] = {}
        for e in doc.entities:
            by_page.setdefault(e.page or 0, []).append(e)
        if not by_page:
            make_graph(doc, self.feats, self.config["graph"])     # E007: no entity blocks
        multi = len(by_page) > 1 or len(doc.pages) > 1
        pages = {p.index: p for p in doc.pages}
        relations, regions, graphs = [], [], {}
        for k in sorted(by_page):
            ents = by_page[k]
            if not multi:
                view = doc
            else:
                page = pages.get(k)
                view = Document(id=doc.id, kind=doc.kind, source=doc.source, pages=[page] if page else [],
                                tokens=doc.tokens, entities=ents, meta=doc.meta)
            data = make_graph(view, self.feats, self.config["graph"])
            out = run_page(self.net, view, data, self.config, gold_labels=use_gold)
            graphs[k] = data
            self._fill_page(doc, ents, data, out, use_gold, relations, regions, prefix=f"p{k}" if multi else "")
        doc.relations = relations
        doc.regions.extend(regions)
        doc.meta.update({"model": MODEL_NAME, "labels_from": "gold" if use_gold else "model",
                         "layout_regions": len(regions)})
        return Result(doc=doc, artifacts={"layout_graph": graphs if multi else graphs[next(iter(graphs))]})

    def _fill_page(self, doc: Document, ents: list, data, out: dict, use_gold: bool, relations: list,
                   regions: list, prefix: str = "") -> None:
        """One page's predictions into ``doc``: its entities' labels, its links appended to
        ``relations`` (ids numbered across the document), its layout regions to ``regions``."""
        version = self.version
        for e, lab, sc in zip(ents, out["labels"], out["label_scores"]):
            if not use_gold:
                e.label = lab
                e.provenance = Provenance(source=doc.source, page=e.page or 0, box=e.box, model=MODEL_NAME,
                                          model_version=version, score=round(float(sc), 4))
        for q, a, p in sorted(out["links"], key=lambda t: (t[1], t[0])):
            relations.append(Relation(id=f"r{len(relations)}", head=ents[q].id, tail=ents[a].id, label=LINK_LABEL,
                                      provenance=Provenance(source=doc.source, page=ents[q].page or 0,
                                                            box=ents[q].box.union(ents[a].box), model=MODEL_NAME,
                                                            model_version=version, score=round(float(p), 4))))
        for k, (kind, members) in enumerate(data.regions):
            box = ents[members[0]].box
            for i in members[1:]:
                box = box.union(ents[i].box)
            page = ents[members[0]].page or 0
            regions.append(Region(id=f"{prefix}{kind}{k}", box=box, kind=kind, page=page,
                                  children=[ents[i].id for i in members],
                                  provenance=Provenance(source=doc.source, page=page, box=box,
                                                        model="layout.regions", model_version=__version__)))

    @classmethod
    def train(cls, config: dict, out_dir: Path) -> dict:
        from .train import train

        return train(cls, config, out_dir)

    def evaluate(self, data: Path, split: str | None = None, ocr: bool = False, limit: int = 0,
                 engine: str = "rapidocr", segment: str = "learned") -> dict:
        """Dev figures on a FUNSD-layout folder: ``split`` dev / train (from the weights' recorded
        dev ids) or all; ``ocr``: also end to end from OCR (first ``limit`` forms, 0 = all), the
        words grouped into blocks by the learned segmenter or (``segment="rule"``) the row rule."""
        split = split or "all"
        if split not in SPLITS:
            raise GraphmieError("E022", None, name="split", value=split, choices=", ".join(SPLITS))
        docs = read_folder(Path(data))
        if split != "all":
            dev_ids = set(self.ckpt.record.get("data", {}).get("dev_ids", []))
            if not dev_ids:
                raise GraphmieError("E031", self.ckpt.path, detail="the weights' record lists no dev split")
            docs = [d for d in docs if (d.id in dev_ids) == (split == "dev")]
        feats = Featurizer(self.config["features"]["text"], cache="form")
        feats.warm([e.text for d in docs for e in d.entities])
        samples = [make_sample(d, feats, self.config["graph"]) for d in docs]
        t = time.perf_counter()
        res = score_samples(self.net, self.config, samples, progress=True)
        res["split"] = split
        res["eval_seconds"] = round(time.perf_counter() - t, 2)
        if ocr:
            if segment not in ("learned", "rule"):
                raise GraphmieError("E022", None, name="segment", value=segment, choices="learned, rule")
            res.update(evaluate_ocr(self.net, self.config, docs[:limit] if limit else docs, feats, engine=engine,
                                    segmenter=self.segmenter if segment == "learned" else None))
        return res
